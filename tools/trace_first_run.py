"""Count the graphc files a first ``Session.run`` enters (docs/ARCHITECTURE.md quotes it).

    python tools/trace_first_run.py [--device cpu] [--list]

Builds softmax(relu(x @ W + b)) and traces every Python call made inside the first
``sess.run`` (with sys.setprofile): the graphc modules it enters, the cross-file call edges
and how many times a call crosses from one file into another. The kernel cache is a fresh
temporary directory, so the count includes compiling and storing the kernels (a warm cache
enters fewer files). tests/test_architecture.py holds docs/ARCHITECTURE.md to this count.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def trace(device: str = "cpu") -> dict:
    sys.path.insert(0, str(ROOT))
    saved = os.environ.get("GRAPHC_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GRAPHC_CACHE_DIR"] = cache
        try:
            return _trace(device)
        finally:
            if saved is None:
                del os.environ["GRAPHC_CACHE_DIR"]
            else:
                os.environ["GRAPHC_CACHE_DIR"] = saved


def _trace(device: str) -> dict:
    import graphc as gc
    package = str(ROOT / "graphc") + os.sep
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 8), name="x")
        w = gc.Variable(np.ones((8, 4), np.float32), name="W")
        b = gc.Variable(np.zeros(4, np.float32), name="b")
        y = gc.nn.softmax(gc.nn.relu(x @ w + b))
        init = gc.global_variables_initializer()
    sess = gc.Session(graph=g, device=device)
    sess.run(init)  # not traced: the first run of the model is
    files: Counter = Counter()
    edges: Counter = Counter()
    stack: list = []

    def profile(frame, event, arg):
        if event == "call":
            name = frame.f_code.co_filename
            here = name[len(package):] if name.startswith(package) else None
            caller = stack[-1] if stack else None
            if here is not None:
                files[here] += 1
                if caller is not None and caller != here:
                    edges[(caller, here)] += 1
            stack.append(here if here is not None else caller)
        elif event == "return" and stack:
            stack.pop()

    feed = {x: np.ones((2, 8), np.float32)}
    sys.setprofile(profile)
    try:
        sess.run(y, feed)
    finally:
        sys.setprofile(None)
    sess.close()
    return {"files": files, "edges": edges}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--list", action="store_true", help="list the files and calls into each")
    args = parser.parse_args()
    result = trace(args.device)
    files, edges = result["files"], result["edges"]
    print(f"first Session.run on {args.device}: {len(files)} graphc files, {len(edges)} cross-file edges, "
          f"{sum(edges.values())} crossings")
    if args.list:
        for name, calls in sorted(files.items()):
            print(f"  {name}: {calls} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
