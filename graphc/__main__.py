"""Command line: ``python -m graphc demo`` and friends."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphc", description="graphc command line")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="build a model graph and run it through a Session")
    demo.add_argument("--device", default=None, help="reference | cpu | cuda (default: the Session default)")
    sub.add_parser("version", help="print the graphc version")
    sub.add_parser("devices", help="the devices a Session can use here, and why one cannot")
    inspect = sub.add_parser("inspect", help="check a model file and describe it (signature, ops, weights)")
    inspect.add_argument("path")
    picture = sub.add_parser("graph", help="draw a model file's graph (Graphviz DOT, SVG, PNG or PDF)")
    picture.add_argument("path")
    picture.add_argument("--svg", help="write an SVG picture here (needs graphc[viz] and Graphviz)")
    picture.add_argument("--out", help="write the picture here; the suffix picks the format (.dot needs nothing)")
    picture.add_argument("--collapse", action="store_true", help="draw each top-level name scope as one box")
    prof = sub.add_parser("profile", help="run a Python script, tracing every Session.run; write a Chrome trace")
    prof.add_argument("--out", help="the trace file (default: <script>.trace.json next to where you are)")
    prof.add_argument("--top", type=int, default=20, help="how many kernels the summary lists")
    prof.add_argument("script")
    prof.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    imp = sub.add_parser("import", help="convert an ONNX model into a graphc model file")
    imp.add_argument("path", help="the .onnx file")
    imp.add_argument("-o", "--out", required=True, help="the graphc model file to write (.gcm)")
    cache = sub.add_parser("cache", help="the on-disk kernel cache (GRAPHC_CACHE_DIR)")
    cache.add_argument("action", choices=("info", "clear"))
    args = parser.parse_args(argv)
    if args.command == "cache":
        from .codegen.cpu import cache as kernel_cache
        if args.action == "info":
            info = kernel_cache.info()
            print(f"kernel cache: {info['directory']}")
            print(f"  {info['programs']} generated kernels, {info['bytes'] / 1e6:.1f} MB on disk (with numba's code)")
            print(f"  key: {info['versions']}")
        else:
            n = kernel_cache.clear()
            print(f"removed {n} generated kernels from {kernel_cache.cache_root() / 'kernels'}")
        return 0
    if args.command == "inspect":
        return _inspect(args.path)
    if args.command == "import":
        return _import_onnx(args.path, args.out)
    if args.command == "profile":
        return _profile(args.script, args.args, args.out, args.top)
    if args.command == "graph":
        return _draw(args.path, args.out or args.svg, args.collapse)
    if args.command == "demo":
        from .demo import run_demo
        return run_demo(device=args.device)
    if args.command == "devices":
        from .codegen.backend import available_devices
        from .errors import CompileError
        for name in available_devices():
            print(f"{name}: {_describe_device(name, CompileError)}")
        return 0
    if args.command == "version":
        import graphc
        print(graphc.__version__)
        return 0
    parser.print_help()
    return 2


def _profile(script: str, script_args: list, out, top: int) -> int:
    """Run ``script`` as ``__main__`` inside ``gc.profiler.trace``; write the trace of every
    run it made and print the kernels that took longest."""
    import os
    import runpy
    from . import profiler
    if not os.path.isfile(script):
        print(f"graphc profile: no such script {script!r}", file=sys.stderr)
        return 2
    out = out or os.path.splitext(os.path.basename(script))[0] + ".trace.json"
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [script] + list(script_args)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    status = 0
    try:
        with profiler.trace() as prof:
            try:
                runpy.run_path(script, run_name="__main__")
            except SystemExit as e:
                status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    if not prof.runs:
        print(f"graphc profile: {script} made no Session.run, so there is nothing to trace; no file written",
              file=sys.stderr)
        return status or 1
    prof.save(out)
    print(prof.report(top), file=sys.stderr)
    print(f"graphc profile: wrote {out}; open it in chrome://tracing or https://ui.perfetto.dev", file=sys.stderr)
    return status


def _draw(path: str, out, collapse: bool) -> int:
    """The model file's graph as a picture (or DOT text on stdout without --svg/--out)."""
    from . import viz
    from .export.model_file import FormatError, decode
    try:
        frozen, _ = decode(path)
    except FormatError as e:
        print(f"invalid: {e}", file=sys.stderr)
        return 1
    if not out:
        print(viz.to_dot(frozen.graph, collapse_scopes=collapse), end="")
        return 0
    try:
        viz.render(frozen.graph, out, collapse_scopes=collapse)
    except (ImportError, RuntimeError, ValueError) as e:
        print(e, file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


def _import_onnx(path: str, out: str) -> int:
    from . import export, onnx
    from .errors import GraphcError
    try:
        model = onnx.import_model(path, device="reference")
        export.save_model(model, out, metadata=model.metadata)
    except GraphcError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}: {model.signature}")
    return 0


def _inspect(path: str) -> int:
    """Every check load_model makes, then what the file holds; exit status 1 if it is invalid."""
    from collections import Counter
    from .export.model_file import FormatError, decode
    try:
        frozen, header = decode(path)
    except FormatError as e:
        print(f"invalid: {e}")
        return 1
    ops = frozen.graph.get_operations()
    consts = [op.attrs["value"] for op in ops if op.type == "const"]
    print(f"{path}: graphc model, format version {header['version']}, written by graphc "
          f"{header['graphc_version']} at {header['created']}")
    print(f"signature: {frozen.signature}")
    for key, value in sorted(header["metadata"].items()):
        print(f"metadata: {key} = {value}")
    counts = Counter(op.type for op in ops)
    print(f"{len(ops)} nodes: " + ", ".join(f"{n} {t}" for t, n in counts.most_common()))
    print(f"weights: {len(consts)} arrays, {sum(c.size for c in consts)} values, "
          f"{sum(c.nbytes for c in consts) / 1024:.1f} KiB")
    return 0


def _describe_device(name: str, error_type) -> str:
    if name == "reference":
        return "NumPy reference backend (the oracle; slow)"
    if name == "cpu":
        from .codegen.cpu import blas, parallel
        b = blas.configure(parallel.THREADS)
        return (f"numba, {parallel.THREADS} threads; BLAS {b.get('library', '?')} ({b.get('core', '?')} kernels, "
                f"{b.get('threads', '?')} threads, set by {b.get('set_by', '?')}; spin: {b.get('spin', '?')})")
    if name == "cuda":
        from .codegen.cuda import api
        try:
            return api.describe()
        except error_type as e:
            return f"not usable: {e}"
    return "registered backend"


if __name__ == "__main__":
    sys.exit(main())
