"""The on-disk kernel cache: generated source, content-addressed, compiled once per machine.

A generated kernel is written to ``<cache>/kernels/<hash[:2]>/g_<hash>.py``, where the hash
covers the source, the graphc, numba and llvmlite versions and the target CPU; numba compiles
it at import with explicit signatures and ``cache=True``, so a second process loads machine
code from numba's cache next to the file instead of compiling. Files are written atomically (temporary file,
fsync, rename); each ends with the hash of its own text, so a truncated or edited file is
detected and rewritten. numba's own cache files (machine code, its index, the bytecode) are
listed with their SHA-256 in ``g_<hash>.sums``, written atomically after they are made, and
checked before numba reads them: LLVM trusts the object code it loads, and a flipped bit in
it killed the process (SIGSEGV, SIGABRT), so an entry that does not match is deleted and
compiled again. A numba cache entry that still fails to load is deleted and rebuilt. Writing
and importing happen under a file lock, so concurrent cold processes compile once.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import threading
from pathlib import Path

import llvmlite
import numba

from ...errors import CompileError
from ...files import atomic_write

STATS = {"compiled": 0, "loaded": 0, "rebuilt": 0}
_lock = threading.Lock()
_modules: dict = {}


def cache_root() -> Path:
    configured = os.environ.get("GRAPHC_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc"


def kernel_dir() -> Path:
    d = cache_root() / "kernels"
    d.mkdir(parents=True, exist_ok=True)
    return d


def kernel_path(digest: str) -> Path:
    """Where the kernel with this source digest lives: in one of 256 shards, by the digest's
    first two hex digits. numba writes a module's cache files to ``__pycache__`` beside it,
    and finding one kernel's files means listing that folder: with every kernel in one folder
    that listing grew with the cache (at the end of a test run, 12,172 files: 17 ms a lookup,
    several per kernel). A shard holds 1/256 of them."""
    return kernel_dir() / digest[:2] / f"g_{digest[:40]}.py"


def host_target() -> str:
    try:
        from llvmlite import binding as llvm
        cpu = llvm.get_host_cpu_name()
    except Exception:  # pragma: no cover - llvmlite always has it
        cpu = "unknown"
    return f"{platform.machine()}-{cpu}"


_VERSION_KEY = None


def version_key() -> str:
    """Everything compiled code depends on besides its own source: the versions, the target,
    and the helper modules generated kernels call (numba's cache does not track those)."""
    global _VERSION_KEY
    if _VERSION_KEY is None:
        import graphc
        from .. import vmath
        from ..emit import runtime
        from . import executable  # defines full_vector_width, an intrinsic every kernel calls
        helpers = hashlib.sha256()
        for module in (runtime, vmath, executable):
            helpers.update(Path(module.__file__).read_bytes())
        _VERSION_KEY = (f"graphc={graphc.__version__} numba={numba.__version__} llvmlite={llvmlite.__version__} "
                        f"python={sys.version_info[0]}.{sys.version_info[1]} target={host_target()} "
                        f"helpers={helpers.hexdigest()[:16]}")
    return _VERSION_KEY


def _footer(body: str) -> str:
    return f"# sha256: {hashlib.sha256(body.encode()).hexdigest()}\n"


def _intact(path: Path) -> bool:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    body, sep, last = text.rpartition("# sha256: ")
    return bool(sep) and last == _footer(body)[len("# sha256: "):]


@contextlib.contextmanager
def file_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: no cross-process lock
        yield
        return
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _numba_cache_files(path: Path) -> list:
    pycache = path.parent / "__pycache__"
    if not pycache.is_dir():
        return []
    return [p for p in pycache.iterdir() if p.name.startswith(path.stem + ".")]


def _sums_path(path: Path) -> Path:
    return path.with_suffix(".sums")


def _digests(files) -> dict:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _verified(path: Path, files: list) -> bool:
    """Every numba cache file of ``path`` is the one recorded after it was made."""
    try:
        recorded = json.loads(_sums_path(path).read_text())
        return isinstance(recorded, dict) and all(recorded.get(name) == d for name, d in _digests(files).items())
    except (OSError, ValueError, UnicodeDecodeError):
        return False


def seal(path: Path) -> None:
    """Record the SHA-256 of the numba cache files of ``path`` (after they were written: at
    import for CPU kernels, after the first launch for CUDA kernels)."""
    files = _numba_cache_files(path)
    if not files or _verified(path, files):
        return
    try:
        atomic_write(_sums_path(path), json.dumps(_digests(files), sort_keys=True))
    except OSError:  # a read-only cache still works; its entries are rebuilt when unverified
        pass


def _drop_numba_cache(path: Path) -> None:
    for stale in _numba_cache_files(path):
        stale.unlink(missing_ok=True)
    _sums_path(path).unlink(missing_ok=True)


def import_file(path: Path, name: str, keep: bool = True):
    """Import the generated source at ``path`` as module ``name``. numba's cache finds a
    function's globals by importing its module by name, so the module is registered under
    that name while it runs, and stays registered if ``keep``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    if not keep:
        sys.modules.pop(name, None)
    return module


def _digest(source: str) -> str:
    return hashlib.sha256((version_key() + "\n" + source).encode()).hexdigest()


def _cached(source: str) -> bool:
    """Is ``source`` loaded, or on disk with numba's machine code (verified when loaded)?"""
    digest = _digest(source)
    return digest in _modules or bool(_numba_cache_files(kernel_path(digest)))


def compile_ahead(sources, workers: int) -> int:
    """Compile the kernels among ``sources`` that no cache holds yet, ``workers`` at a time:
    this process compiles the first one (numba's typing registries are then loaded, and the
    children inherit them), then forks ``workers - 1`` children that compile a share each
    into numba's disk cache while this process compiles its own share; ``load`` then reads
    the children's from the cache. numba compiles one kernel at a time per process (a
    global lock), so this is what makes a cold start on ``n`` free cores about ``n`` times
    faster. A child that fails leaves its kernels to ``load``, which compiles them here and
    reports any error. Returns the number of children used (0 without ``os.fork``)."""
    missing = list(dict.fromkeys(src for src in sources if not _cached(src)))
    if len(missing) < 3 or workers < 2 or not hasattr(os, "fork"):
        return 0
    load(missing.pop(0))
    shares = [missing[k::workers] for k in range(workers)]
    from numba.core.compiler_lock import global_compiler_lock
    children = []
    for share in shares[1:]:
        if not share:
            continue
        # no other thread may hold a lock the child needs at the moment of the fork
        with _lock, global_compiler_lock:
            pid = os.fork()
        if pid == 0:  # the child: compile into the disk cache, then leave at once
            code = 0
            try:
                for src in share:
                    load(src)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    try:
        for src in shares[0]:
            load(src)
    finally:
        for pid in children:
            os.waitpid(pid, 0)
    return len(children)


def load(source: str):
    """The module compiled from ``source`` (defining ``kernel``), from memory, from the disk
    cache, or compiled now."""
    digest = _digest(source)
    with _lock:
        if digest in _modules:
            return _modules[digest]
        path = kernel_path(digest)
        path.parent.mkdir(exist_ok=True)
        body = f"# graphc generated kernel ({version_key()}); do not edit\n{source}\n"
        with file_lock(path.with_suffix(".lock")):
            if not path.exists() or not _intact(path):
                if path.exists():
                    STATS["rebuilt"] += 1
                    _drop_numba_cache(path)
                atomic_write(path, body + _footer(body))
            else:
                cached = _numba_cache_files(path)
                if cached and not _verified(path, cached):  # damaged on disk, or never sealed
                    STATS["rebuilt"] += 1
                    _drop_numba_cache(path)
            name = f"graphc_generated_{digest[:24]}"
            try:
                module = import_file(path, name)
            except Exception as first:
                stale = _numba_cache_files(path)
                if not stale:
                    raise CompileError(f"numba could not compile the generated kernel {path}: "
                                       f"{type(first).__name__}: {first}") from first
                # a damaged numba cache entry: drop it and compile again
                STATS["rebuilt"] += 1
                _drop_numba_cache(path)
                try:
                    module = import_file(path, name)
                except Exception as e:
                    raise CompileError(f"numba could not compile the generated kernel {path}: "
                                       f"{type(e).__name__}: {e}") from e
            seal(path)
            module.cache_path = path
        stats = getattr(module.kernel, "stats", None)  # a CUDA kernel compiles at its first launch
        if stats is not None and sum(stats.cache_hits.values()):
            STATS["loaded"] += 1
        else:
            STATS["compiled"] += 1
        _modules[digest] = module
        return module


def info() -> dict:
    root = cache_root()
    d = root / "kernels"
    files = list(d.glob("*/g_*.py")) if d.is_dir() else []  # one file per generated kernel
    size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) if d.is_dir() else 0
    return {"directory": str(d), "programs": len(files), "bytes": size, "versions": version_key()}


def clear() -> int:
    d = cache_root() / "kernels"
    if not d.is_dir():
        return 0
    n = len(list(d.glob("*/g_*.py")))
    shutil.rmtree(d)
    with _lock:
        _modules.clear()
    return n
