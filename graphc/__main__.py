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
    args = parser.parse_args(argv)
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
