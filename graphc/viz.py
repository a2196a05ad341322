"""``gc.viz``: pictures of graphs in Graphviz's DOT language, as Theano's ``pydotprint`` and
TensorBoard's graph view draw them.

* ``to_dot(graph_or_fetches)`` draws the user's graph: one box per op with its type, its
  output shapes and (as the tooltip) the user's file:line; name scopes become clusters, or
  single boxes with ``collapse_scopes=True``.
* ``to_dot(fetches, session=sess, optimized=True)`` draws the program the Session compiles
  for those fetches instead: each instr inside a cluster per kernel group, so the picture
  shows what fusion did.
* ``render(..., "graph.svg")`` writes the picture with the ``graphviz`` package (the extra
  ``graphc[viz]`` and Graphviz's ``dot`` program); a ``.dot`` path needs neither.
"""
from __future__ import annotations

import os
from typing import Optional

from .files import atomic_write
from .graph import Graph, Operation, Tensor, ancestors, get_default_graph, user_location
from .nest import flatten


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape(t: Tensor) -> str:
    shape = t.shape
    if not shape.known_rank:
        return f"{t.dtype.name}[?]"
    return f"{t.dtype.name}[{', '.join('?' if d is None else str(d) for d in shape)}]"


def _needed_ops(fetches) -> list:
    """The ops the fetches need (inputs and control inputs), in graph order."""
    leaves, _ = flatten(fetches)
    targets = [leaf.value() if hasattr(leaf, "value") and not isinstance(leaf, (Tensor, Operation)) else leaf
               for leaf in leaves]
    return sorted(ancestors(targets), key=lambda op: op._id)


def _scope_of(name: str, depth: Optional[int] = None) -> tuple:
    parts = name.split("/")[:-1]
    return tuple(parts if depth is None else parts[:depth])


def to_dot(graph_or_fetches=None, *, session=None, feed_dict=None, optimized: bool = False,
           collapse_scopes: bool = False, show_shapes: bool = True, rankdir: str = "TB") -> str:
    """DOT text of a graph (a ``gc.Graph``, or the part of one that fetches need; default: the
    default graph), or with ``optimized=True`` of the program ``session`` compiles for the
    fetches, with its kernel groups as clusters."""
    if optimized:
        if session is None:
            raise ValueError(f"gc.viz.to_dot at {user_location()}: optimized=True draws what a Session compiles; "
                             "pass session=")
        return _program_dot(session, graph_or_fetches, feed_dict, rankdir)
    if graph_or_fetches is None or isinstance(graph_or_fetches, Graph):
        graph = graph_or_fetches or get_default_graph()
        ops = graph.get_operations()
    else:
        ops = _needed_ops(graph_or_fetches)
    return _graph_dot(ops, collapse_scopes, show_shapes, rankdir)


def _graph_dot(ops: list, collapse: bool, show_shapes: bool, rankdir: str) -> str:
    lines = ["digraph graphc {", f"  rankdir={rankdir};", '  node [shape=box, style="rounded,filled", '
             'fillcolor="#f4f4f4", fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=8];']
    box = {}  # op -> the node id it is drawn as (its scope's box when collapsed)
    if collapse:
        counts: dict = {}
        for op in ops:
            scope = _scope_of(op.name, 1)
            counts[scope] = counts.get(scope, 0) + 1
        for op in ops:
            scope = _scope_of(op.name, 1)
            box[op] = f"scope:{scope[0]}" if scope else f"op:{op.name}"
        for scope, n in counts.items():
            if scope:
                lines.append(f"  {_quote('scope:' + scope[0])} [label={_quote(f'{scope[0]}  ({n} ops)')}, "
                             'shape=box3d, fillcolor="#dde8f5"];')
        drawn = [op for op in ops if not _scope_of(op.name, 1)]
        lines += [f"  {_op_node(op, show_shapes)}" for op in drawn]
    else:
        for op in ops:
            box[op] = f"op:{op.name}"
        tree: dict = {}
        for op in ops:
            node = tree
            for part in _scope_of(op.name):
                node = node.setdefault(part, {})
            node.setdefault(None, []).append(op)
        lines += _clusters(tree, (), show_shapes, "  ")
    edges = set()
    for op in ops:
        for t in op.inputs:
            if t.op in box and box[t.op] != box[op]:
                edges.add((box[t.op], box[op], _shape(t) if show_shapes else "", False))
        for c in op.control_inputs:
            if c in box and box[c] != box[op]:
                edges.add((box[c], box[op], "", True))
    for src, dst, label, control in sorted(edges):
        attrs = ([f"label={_quote(label)}"] if label else []) + (['style=dashed, color="#888888"'] if control else [])
        lines.append(f"  {_quote(src)} -> {_quote(dst)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _op_node(op: Operation, show_shapes: bool) -> str:
    label = f"{op.name.split('/')[-1]}\n{op.type}"
    if show_shapes and op.outputs:
        label += "\n" + ", ".join(_shape(t) for t in op.outputs)
    return f"{_quote('op:' + op.name)} [label={_quote(label)}, tooltip={_quote(f'{op.name} at {op.location}')}];"


def _clusters(tree: dict, path: tuple, show_shapes: bool, indent: str) -> list:
    lines = [f"{indent}{_op_node(op, show_shapes)}" for op in tree.get(None, [])]
    for part, sub in tree.items():
        if part is None:
            continue
        scope = path + (part,)
        lines.append(f"{indent}subgraph {_quote('cluster_' + '/'.join(scope))} {{")
        lines.append(f'{indent}  label={_quote(part)}; style="rounded"; color="#7a9cc6";')
        lines += _clusters(sub, scope, show_shapes, indent + "  ")
        lines.append(f"{indent}}}")
    return lines


def _program_dot(session, fetches, feed_dict, rankdir: str) -> str:
    from .runtime.session import _fed_ranks
    leaves, _ = flatten(fetches)
    targets = list(dict.fromkeys(session._resolve_fetch(f) for f in leaves))
    feed_tensors, feed_values = session._resolve_feeds(feed_dict)
    if feed_dict is None:  # no values to draw with: every placeholder the fetches need is fed
        feed_tensors = [op.outputs[0] for op in _needed_ops(targets) if op.type == "placeholder"]
    program = session._optimized(targets, feed_tensors, dict(_fed_ranks(feed_tensors, feed_values))).program
    lines = ["digraph graphc_program {", f"  rankdir={rankdir};",
             '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica", fontsize=10];']
    producer = program.producers()
    grouped = set()
    for k, group in enumerate(program.groups or ()):
        members = [i for i in group.members]
        grouped.update(members)
        kernel = group.is_kernel and any(program.instrs[i].op not in ("const", "read_variable") for i in members)
        lines.append(f"  subgraph {_quote(f'cluster_{k}')} {{")
        lines.append(f"    label={_quote(f'kernel {k}: {group.kind}' if kernel else group.kind)}; "
                     f'style="rounded{",filled" if kernel else ""}"; fillcolor="#eef5e9"; color="#6a9a4c";')
        lines += [f"    {_instr_node(program, i)}" for i in members]
        lines.append("  }")
    lines += [f"  {_instr_node(program, i)}" for i in range(len(program.instrs)) if i not in grouped]
    for v in program.feeds:
        lines.append(f"  {_quote(f'v{v}')} [label={_quote('feed ' + program.name_of(v))}, shape=ellipse];")
    for i, ins in enumerate(program.instrs):
        for v in ins.inputs:
            src = f"i{producer[v]}" if v in producer else f"v{v}"
            lines.append(f"  {_quote(src)} -> {_quote(f'i{i}')};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _instr_node(program, i: int) -> str:
    ins = program.instrs[i]
    label = ins.op if ins.origin is None else f"{ins.origin.name.split('/')[-1]}\n{ins.op}"
    tooltip = str(ins.origin) if ins.origin is not None else ins.op
    return f"{_quote(f'i{i}')} [label={_quote(label)}, tooltip={_quote(tooltip)}];"


def render(graph_or_fetches=None, path="graph.svg", **options) -> str:
    """Write the picture of ``to_dot(graph_or_fetches, **options)`` to ``path``; its suffix
    picks the format (``.svg``, ``.png``, ``.pdf``; ``.dot`` writes the text itself). Returns
    the path."""
    where = user_location()
    text = to_dot(graph_or_fetches, **options)
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "svg"
    if fmt in ("dot", "gv"):
        atomic_write(path, text)
        return path
    try:
        import graphviz
    except ImportError:
        raise ImportError(f"gc.viz.render at {where}: drawing {fmt} needs the graphviz package: "
                          "pip install 'graphc[viz]' (and Graphviz's dot program); a .dot path needs neither") from None
    try:
        data = graphviz.Source(text).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RuntimeError(f"gc.viz.render at {where}: Graphviz's dot program is not installed (apt install "
                           "graphviz, or conda install graphviz); a .dot path needs no program") from None
    except ValueError as e:  # an unknown format
        raise ValueError(f"gc.viz.render at {where}: cannot write {path!r}: {e}") from None
    atomic_write(path, data)
    return path
