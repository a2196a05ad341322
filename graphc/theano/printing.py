"""``theano.printing``: ``pprint`` and ``debugprint`` of a variable's graph (text only)."""
from __future__ import annotations

import sys

from .variables import unwrap_tensor


def debugprint(obj, file=None, print_type: bool = False):
    """Print the ops a variable (or a list of them) depends on, one per line, indented by depth."""
    out = file or sys.stdout
    seen = set()
    lines = []

    def visit(t, depth):
        op = t.op
        label = f"{'|' * min(depth, 1)}{' ' * depth}{op.type} [id {op.name}]"
        if print_type:
            label += f" '{t.dtype.name}{list(t.shape)}'"
        if op in seen:
            lines.append(label + " ''")
            return
        seen.add(op)
        lines.append(label)
        for i in op.inputs:
            visit(i, depth + 1)

    for v in obj if isinstance(obj, (list, tuple)) else [obj]:
        visit(unwrap_tensor(v), 0)
    text = "\n".join(lines)
    if file == "str":
        return text
    print(text, file=out)
    return None


def pprint(obj) -> str:
    t = unwrap_tensor(obj)
    return f"{t.op.type}({', '.join(i.name for i in t.op.inputs)})"
