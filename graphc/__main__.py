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
    if args.command == "demo":
        from .demo import run_demo
        return run_demo(device=args.device)
    if args.command == "version":
        import graphc
        print(graphc.__version__)
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
