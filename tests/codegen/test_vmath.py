"""graphc.codegen.vmath: accuracy in ulps over the whole input range, exact edge cases, and
proof that a numba loop calling the functions is vectorised with no libm calls.

Errors are measured in ulps of the exact value (the reference is not rounded first, so a
correctly rounded result scores <= 0.5).  float32 references: the float64 NumPy/SciPy value.
float64 references: NumPy's long-double functions (x87 80-bit here), and for erf a positive-term
series summed in long double (checked offline against mpmath: relative error < 1e-18).  The
bounds asserted are the ones documented in docs/VMATH.md; the exhaustive float32 sweep behind
them is tools/vmath_exhaustive.py.
"""
import math
import platform
import re

import numpy as np
import pytest
import scipy.special
from numba import float32, float64, njit

from graphc.codegen import vmath

NAMES = ["exp", "log", "tanh", "sigmoid", "erf", "expm1"]
SUFFIX = ["f32", "f64"]
DTYPE = {"f32": np.float32, "f64": np.float64}
NBTYPE = {"f32": float32, "f64": float64}

# documented max-ulp bounds (docs/VMATH.md); the measured maxima are below these
BOUND = {
    ("exp", "f32"): 1.5, ("exp", "f64"): 1.5,
    ("log", "f32"): 1.5, ("log", "f64"): 1.5,
    ("tanh", "f32"): 3.0, ("tanh", "f64"): 3.0,
    ("sigmoid", "f32"): 3.0, ("sigmoid", "f64"): 3.0,
    ("erf", "f32"): 2.0, ("erf", "f64"): 2.0,
    ("expm1", "f32"): 2.5, ("expm1", "f64"): 2.5,
}

LD = np.longdouble
HAVE_LD = np.finfo(LD).nmant >= 63   # x87 80-bit or IEEE quad


# ----------------------------------------------------------------------------- kernels
_KERNELS = {}


def kernel(name, suffix):
    """The way generated kernels call vmath: an @njit loop over contiguous arrays."""
    key = (name, suffix)
    if key not in _KERNELS:
        fn = getattr(vmath, f"{name}_{suffix}")

        @njit
        def loop(x, out):
            for i in range(x.shape[0]):
                out[i] = fn(x[i])

        T = NBTYPE[suffix][::1]
        loop.compile((T, T))
        _KERNELS[key] = loop
    return _KERNELS[key]


def apply(name, suffix, x):
    x = np.ascontiguousarray(x, dtype=DTYPE[suffix])
    out = np.empty_like(x)
    kernel(name, suffix)(x, out)
    return out


# ----------------------------------------------------------------------------- references
def _sigmoid_ref(x):
    e = np.exp(-np.abs(x))
    return np.where(x < 0, e, 1) / (1 + e)


def erf_ld(x):
    """erf in long double: 2/sqrt(pi) * exp(-x^2) * sum_n (2x^2)^n x / (2n+1)!!  (all terms
    positive, so no cancellation); 1 beyond |x| = 6.5, where erfc < 1e-19."""
    x = np.asarray(x, dtype=LD)
    a = np.abs(x)
    r = np.ones_like(a)
    idx = np.nonzero(a < 6.5)[0]
    aa = a[idx]
    z2 = 2 * aa * aa
    term = aa.copy()
    s = aa.copy()
    live = np.arange(aa.size)
    for n in range(1, 400):
        term[live] = term[live] * z2[live] / (2 * n + 1)
        s[live] += term[live]
        live = live[term[live] > s[live] * LD(1e-22)]
        if live.size == 0:
            break
    r[idx] = LD("1.12837916709551257389615890312154517") * np.exp(-aa * aa) * s
    r[np.isnan(a)] = np.nan
    return np.copysign(r, x)


REF32 = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "expm1": np.expm1,
         "sigmoid": _sigmoid_ref, "erf": scipy.special.erf}
if HAVE_LD:
    REF64 = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "expm1": np.expm1,
             "sigmoid": _sigmoid_ref, "erf": erf_ld}
else:  # no wider type: float64 references (themselves ~1 ulp), bound loosened by 1 ulp
    REF64 = dict(REF32)


def reference(name, suffix, x):
    with np.errstate(all="ignore"):
        if suffix == "f32":
            return REF32[name](np.asarray(x, dtype=np.float64))
        return REF64[name](np.asarray(x, dtype=LD if HAVE_LD else np.float64))


def ulp_error(y, ref, suffix):
    """|y - ref| in ulps of ref in y's format (ref unrounded, in a wider type).  Special values
    must match exactly: ref NaN <-> y NaN; ref rounding to +-inf <-> y the same inf; a zero
    ref's sign must match a zero y's; anything else gives an infinite error."""
    dt = DTYPE[suffix]
    fi = np.finfo(dt)
    p, emin = fi.nmant + 1, fi.minexp
    y = np.asarray(y)
    ref = np.asarray(ref)
    with np.errstate(all="ignore"):
        rounded = ref.astype(dt)
        wide = ref.dtype
        _, e = np.frexp(ref)
        ulp = np.ldexp(np.ones_like(ref), np.maximum(e - 1, emin) - (p - 1))
        err = np.abs(y.astype(wide) - ref) / ulp
    special = np.isnan(ref) | np.isinf(rounded)
    same_special = (np.isnan(ref) & np.isnan(y)) | (np.isinf(rounded) & (y == rounded))
    err = np.where(special, np.where(same_special, 0.0, np.inf), err)
    err = np.where(~special & ~np.isfinite(y), np.inf, err)
    zero_sign = (ref == 0) & (y == 0) & (np.signbit(ref) != np.signbit(y))
    return np.where(zero_sign, np.inf, err)


def bound(name, suffix):
    b = BOUND[(name, suffix)]
    return b + 1.0 if (suffix == "f64" and not HAVE_LD) else b


# ----------------------------------------------------------------------------- inputs
# where each function does something other than saturate (dense linear sampling there)
ACTIVE = {
    ("exp", "f32"): (-105, 90), ("exp", "f64"): (-750, 711),
    ("expm1", "f32"): (-20, 90), ("expm1", "f64"): (-40, 711),
    ("log", "f32"): (0, 4), ("log", "f64"): (0, 4),
    ("tanh", "f32"): (-10, 10), ("tanh", "f64"): (-22, 22),
    ("sigmoid", "f32"): (-105, 20), ("sigmoid", "f64"): (-750, 40),
    ("erf", "f32"): (-4.5, 4.5), ("erf", "f64"): (-6.5, 6.5),
}


def edge_values(dt):
    fi = np.finfo(dt)
    tiny_sub = fi.smallest_subnormal
    max_sub = fi.smallest_normal - fi.smallest_subnormal
    base = [0.0, tiny_sub, 2 * tiny_sub, max_sub, fi.smallest_normal, fi.eps, 0.5, 1.0, 2.0,
            np.nextafter(dt(1), dt(0)), np.nextafter(dt(1), dt(2)), 10.0, 100.0, 1e4, 1e10,
            fi.max, np.inf]
    if dt == np.float32:
        base += [88.72, 88.72283, 88.722839, 88.7229, 89.0, 87.3, 87.33654, 87.34, 103.0,
                 103.97, 103.972, 103.98, 104.0, 105.0, 15.9, 17.33, 3.9, 3.92, 4.0, 9.0, 10.0]
    else:
        base += [709.78, 709.782712893384, 709.7827128933841, 709.79, 710.0, 708.39,
                 708.3964185322641, 708.4, 744.44, 745.13, 745.1332191019411, 745.14,
                 746.0, 800.0, 36.7, 37.5, 5.9, 5.92, 6.0, 19.0, 22.0, 1e300]
    v = np.array(base, dtype=dt)
    return np.concatenate([v, -v, np.array([np.nan], dtype=dt)])


def sweep_inputs(name, suffix, n=150_000, seed=0):
    """Log-spaced magnitudes over the whole finite range (both signs), random bit patterns
    (every exponent equally likely), dense linear samples over the active range, edges."""
    dt = DTYPE[suffix]
    fi = np.finfo(dt)
    rng = np.random.default_rng(seed)
    lo = np.log10(float(fi.smallest_subnormal))
    hi = np.log10(float(fi.max)) * (1 - 1e-12)
    mags = np.logspace(lo, hi, n).astype(dt)
    if dt == np.float32:
        bits = rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    else:
        bits = rng.integers(0, 2 ** 64, n, dtype=np.uint64).view(np.float64)
    a, b = ACTIVE[(name, suffix)]
    lin = np.linspace(a, b, 2 * n).astype(dt)
    near0 = (rng.uniform(-1, 1, n) * 2.0 ** rng.integers(-40, 2, n)).astype(dt)
    x = np.concatenate([mags, -mags, bits[np.isfinite(bits)], lin, near0, edge_values(dt)])
    return x


# ----------------------------------------------------------------------------- accuracy
CASES = [(n, s) for n in NAMES for s in SUFFIX]
IDS = [f"{n}_{s}" for n, s in CASES]


@pytest.mark.parametrize("name,suffix", CASES, ids=IDS)
def test_max_ulp_error_over_whole_range(name, suffix):
    x = sweep_inputs(name, suffix)
    y = apply(name, suffix, x)
    err = ulp_error(y, reference(name, suffix, x), suffix)
    i = int(np.argmax(err))
    assert err[i] <= bound(name, suffix), (
        f"{name}_{suffix}: {err[i]:.3f} ulp at x={x[i]!r} -> {y[i]!r}")
    # the sweep really did cover the range: it contains results of every kind expected
    assert np.isnan(y).sum() >= 1
    assert np.isfinite(y).sum() > 0.5 * y.size


def test_ulp_error_helper_detects_errors():
    # the helper this file relies on: 1 ulp off scores 1, wrong specials score inf
    one = np.array([1.0], dtype=np.float32)
    assert ulp_error(np.nextafter(one, np.float32(2)), np.array([1.0]), "f32")[0] == 1.0
    assert ulp_error(np.array([np.inf], np.float32), np.array([1e38]), "f32")[0] == np.inf
    assert ulp_error(np.array([3e38], np.float32), np.array([1e39]), "f32")[0] == np.inf
    assert ulp_error(np.array([1.0], np.float32), np.array([np.nan]), "f32")[0] == np.inf
    assert ulp_error(np.array([-0.0], np.float32), np.array([0.0]), "f32")[0] == np.inf
    sub = np.float32(2.0 ** -149)
    assert ulp_error(np.array([2 * sub]), np.array([float(sub)]), "f32")[0] == 1.0


def test_long_double_erf_reference_matches_scipy():
    if not HAVE_LD:
        pytest.skip("no long double wider than float64 here")
    x = np.linspace(-7, 7, 20001)
    ref = erf_ld(x)
    sp = scipy.special.erf(x)
    err = np.abs(ref.astype(np.float64) - sp) / np.spacing(np.abs(sp) + 1e-300)
    assert np.max(err) <= 2.0


# ----------------------------------------------------------------------------- edge cases
def _f(suffix, v):
    return DTYPE[suffix](v)


def _bitwise_equal(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    return np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(
        a[~np.isnan(a)].view(np.uint8), b[~np.isnan(b)].view(np.uint8))


EXACT = {
    # name: [(input, expected)] -- bitwise (signed zeros, infinities) or NaN
    "exp": [(np.nan, np.nan), (np.inf, np.inf), (-np.inf, 0.0), (0.0, 1.0), (-0.0, 1.0),
            ("tiny", 1.0), ("-tiny", 1.0), ("max", np.inf), ("-max", 0.0),
            ("ovf", np.inf), ("unf", 0.0)],
    "expm1": [(np.nan, np.nan), (np.inf, np.inf), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0),
              ("tiny", "tiny"), ("-tiny", "-tiny"), ("max", np.inf), ("-max", -1.0),
              ("ovf", np.inf), (-100.0, -1.0)],
    "log": [(np.nan, np.nan), (np.inf, np.inf), (-np.inf, np.nan), (0.0, -np.inf),
            (-0.0, -np.inf), (-1.0, np.nan), ("-tiny", np.nan), ("-max", np.nan), (1.0, 0.0),
            (2.0, "ln2"), (0.5, "-ln2")],
    "tanh": [(np.nan, np.nan), (np.inf, 1.0), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0),
             ("tiny", "tiny"), ("-tiny", "-tiny"), ("max", 1.0), ("-max", -1.0),
             (25.0, 1.0), (-25.0, -1.0)],
    "sigmoid": [(np.nan, np.nan), (np.inf, 1.0), (-np.inf, 0.0), (0.0, 0.5), (-0.0, 0.5),
                ("max", 1.0), ("-max", 0.0), (50.0, 1.0), ("tiny", 0.5), ("-tiny", 0.5)],
    "erf": [(np.nan, np.nan), (np.inf, 1.0), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0),
            ("max", 1.0), ("-max", -1.0), (10.0, 1.0), (-10.0, -1.0)],
}


def _resolve(v, suffix):
    dt = DTYPE[suffix]
    fi = np.finfo(dt)
    special = {"tiny": fi.smallest_subnormal, "max": fi.max,
               "ovf": 89.0 if suffix == "f32" else 710.0,
               "unf": -104.0 if suffix == "f32" else -746.0,
               "ln2": dt(math.log(2)), "-ln2": dt(-math.log(2))}
    if isinstance(v, str):
        return -dt(special[v[1:]]) if v.startswith("-") and v[1:] in special else dt(special[v])
    return dt(v)


@pytest.mark.parametrize("name,suffix", CASES, ids=IDS)
def test_special_values_exact(name, suffix):
    xs = np.array([_resolve(a, suffix) for a, _ in EXACT[name]], dtype=DTYPE[suffix])
    want = np.array([_resolve(b, suffix) for _, b in EXACT[name]], dtype=DTYPE[suffix])
    # one at a time (scalar remainder loop), each repeated (vector body), and interleaved
    # (each vector mixes special and ordinary lanes)
    rng = np.random.default_rng(1)
    perm = rng.permutation(64 * xs.size)
    runs = [(xs, want), (np.repeat(xs, 64), np.repeat(want, 64)),
            (np.tile(xs, 64)[perm], np.tile(want, 64)[perm])]
    for x_in, w_all in runs:
        got = apply(name, suffix, x_in)
        for x, g, w in zip(x_in, got, w_all):
            assert _bitwise_equal(g, w), f"{name}_{suffix}({x!r}) = {g!r}, want {w!r}"


@pytest.mark.parametrize("name,suffix", CASES, ids=IDS)
def test_edge_values_match_numpy_semantics(name, suffix):
    # thresholds (overflow, underflow into and out of the subnormal range), subnormal inputs,
    # +-0, +-inf, NaN: NaN positions, infinities and zero signs exact, the rest within bound
    x = edge_values(DTYPE[suffix])
    y = apply(name, suffix, x)
    err = ulp_error(y, reference(name, suffix, x), suffix)
    i = int(np.argmax(err))
    assert err[i] <= bound(name, suffix), f"{name}_{suffix}({x[i]!r}) = {y[i]!r}"


def test_exp_underflow_is_gradual():
    # results in the subnormal range are correctly rounded from the polynomial (one rounding):
    # exp over the whole f32 / f64 subnormal output range, at the ulp of the subnormal grid
    for suffix, lo, hi in [("f32", -103.98, -87.0), ("f64", -745.2, -707.0)]:
        x = np.linspace(lo, hi, 50001).astype(DTYPE[suffix])
        y = apply("exp", suffix, x)
        ref = reference("exp", suffix, x)
        assert np.max(ulp_error(y, ref, suffix)) <= 1.0
        fi = np.finfo(DTYPE[suffix])
        subnormal = (y > 0) & (y < fi.smallest_normal)
        assert subnormal.sum() > 10000          # the range really produces subnormals
        assert (y == 0).sum() > 0 and y[0] == 0  # and reaches 0 at the bottom
        assert np.all(np.diff(y) >= 0)          # monotone through the subnormal range


def test_log_of_subnormals():
    for suffix in SUFFIX:
        fi = np.finfo(DTYPE[suffix])
        k = np.arange(1, 2000, dtype=np.float64)
        x = (fi.smallest_subnormal * k).astype(DTYPE[suffix])
        x = np.concatenate([x, np.array([fi.smallest_normal - fi.smallest_subnormal],
                                        dtype=DTYPE[suffix])])
        y = apply("log", suffix, x)
        assert np.max(ulp_error(y, reference("log", suffix, x), suffix)) <= bound("log", suffix)


@pytest.mark.parametrize("suffix", SUFFIX)
def test_odd_functions_are_exactly_odd(suffix):
    x = sweep_inputs("erf", suffix, n=20_000, seed=3)
    x = x[~np.isnan(x)]
    for name in ["tanh", "erf"]:
        assert _bitwise_equal(apply(name, suffix, -x), -apply(name, suffix, x)), name


@pytest.mark.parametrize("suffix", SUFFIX)
def test_small_arguments_no_cancellation(suffix):
    # tanh(x) ~ x, erf(x) ~ 2x/sqrt(pi), expm1(x) ~ x and sigmoid(x) - 1/2 ~ x/4 near 0:
    # the relative error stays at ulp level down to the smallest subnormals
    dt = DTYPE[suffix]
    fi = np.finfo(dt)
    x = np.geomspace(float(fi.smallest_subnormal) * 64, 1e-2, 5000).astype(dt)
    x = np.concatenate([x, -x])
    for name in ["tanh", "erf", "expm1"]:
        err = ulp_error(apply(name, suffix, x), reference(name, suffix, x), suffix)
        assert np.max(err) <= bound(name, suffix), name
    # sigmoid(-100) (f32) / sigmoid(-700) (f64) are tiny but correct
    for v in ([-100.0, -87.0, -50.0] if suffix == "f32" else [-745.0, -700.0, -100.0]):
        xv = np.array([v], dtype=dt)
        y = apply("sigmoid", suffix, xv)
        assert y[0] > 0
        assert ulp_error(y, reference("sigmoid", suffix, xv), suffix)[0] <= bound("sigmoid", suffix)


def test_float32_versions_compute_in_float32():
    # no double arithmetic sneaks into the float32 kernels (numba promotes Python floats)
    for name in NAMES:
        loop = kernel(name, "f32")
        T = float32[::1]
        ir_text = loop.inspect_llvm((T, T))
        body = _kernel_function(ir_text)
        assert "double" not in body, name
        assert loop.nopython_signatures[0].args[0].dtype == float32


_FASTMATH_NO_NAN_INF = {"contract", "afn", "reassoc", "arcp"}


def _all_six_kernel(suffix, fastmath):
    f = {n: getattr(vmath, f"{n}_{suffix}") for n in NAMES}
    exp_, log_, tanh_, sig_, erf_, em1_ = (f[n] for n in ORDER6)

    @njit(fastmath=fastmath)
    def all_six(x, out):
        for i in range(x.shape[0]):
            v = x[i]
            out[0, i] = exp_(v)
            out[1, i] = log_(v)
            out[2, i] = tanh_(v)
            out[3, i] = sig_(v)
            out[4, i] = erf_(v)
            out[5, i] = em1_(v)

    return all_six


ORDER6 = ["exp", "log", "tanh", "sigmoid", "erf", "expm1"]


@pytest.mark.parametrize("suffix", SUFFIX)
def test_fastmath_caller(suffix):
    # Generated kernels may use fastmath.  The inlined vmath bodies keep their own strict
    # instruction flags, so for finite inputs with finite results a fastmath=True kernel gets
    # bit-identical values.  (numba also marks the *call* nnan/ninf under fastmath=True, which
    # makes NaN/inf arguments or results poison, exactly as for math.exp; a kernel that needs
    # NaN/inf semantics uses fastmath without "nnan"/"ninf"/"nsz", and then everything,
    # edge cases included, is bit-identical.)
    # numba lets a callee inherit fastmath from the caller that first compiles it unless the
    # callee sets it; vmath sets fastmath=False, so its compiled code stays strict whoever
    # compiles it first (an inherited fastmath version, cached and reused by strict callers,
    # gave sigmoid(0) = 0.49999997 through a reciprocal estimate in the vector loop)
    for name in ORDER6:
        fn = getattr(vmath, f"{name}_{suffix}")
        assert fn.targetoptions.get("fastmath") is False
        assert fn.targetoptions.get("error_model") == "numpy"
    x = np.concatenate([sweep_inputs("erf", suffix, n=5000, seed=5), edge_values(DTYPE[suffix])])
    strict = np.stack([apply(name, suffix, x) for name in ORDER6])
    for fm in (True, _FASTMATH_NO_NAN_INF):
        out = np.empty((6, x.size), dtype=DTYPE[suffix])
        _all_six_kernel(suffix, fm)(x, out)
        for row, want, name in zip(out, strict, ORDER6):
            ok = np.isfinite(x) & np.isfinite(want) if fm is True else np.ones(x.size, bool)
            assert _bitwise_equal(row[ok], want[ok]), (name, fm)
    for name in ORDER6:   # strict kernels compiled after the fastmath ones are still strict
        T = NBTYPE[suffix][::1]
        assert not _FAST_FLAGS.search(_kernel_function(kernel(name, suffix).inspect_llvm((T, T))))


def test_wrong_dtype_is_a_typing_error():
    # a float32 function given a float64 (or a Python float) does not silently compute in the
    # wrong precision: its intrinsics refuse mixed types, so compilation fails
    from numba.core.errors import TypingError

    @njit
    def call_f32(v):
        return vmath.exp_f32(v)

    assert call_f32(np.float32(1.0)) == np.float32(np.e)
    with pytest.raises(TypingError):
        call_f32(1.0)


# ----------------------------------------------------------------------------- vectorisation
# the only calls allowed in a kernel body: cheap LLVM intrinsics that are single instructions
# (llvm.exp/log/pow... are NOT allowed: without SVML they lower to scalar libm calls)
_CHEAP_INTRINSIC = re.compile(r"^llvm\.(fmuladd|fma|fabs|copysign|minnum|maxnum|minimum|maximum|"
                              r"lifetime|assume|memset|memcpy|experimental\.noalias)\.")
_LIBM_IN_ASM = re.compile(r"\b(exp|expf|expm1|expm1f|log|logf|log1p|log1pf|tanh|tanhf|erf|erff|"
                          r"pow|powf|ldexpf?|frexpf?)(@PLT|@GOTPCREL)?\b(?!\.)")


_FAST_FLAGS = re.compile(r"= (?:fadd|fsub|fmul|fdiv|frem|fcmp|call)\s+"
                         r"(?:fast|nnan|ninf|nsz|arcp|contract|afn|reassoc)\b[^\n]*")


def _kernel_function(ir_text):
    """The body of the compiled loop function (not its cpython / cfunc wrappers)."""
    for m in re.finditer(r"define [^\n]*?@\"?([\w.$]+)\"?\([^\n]*\{\n(.*?)\n\}", ir_text, re.S):
        name = m.group(1)
        if "loop" in name and not name.startswith(("_ZN7cpython", "cfunc.")):
            return m.group(2)
    raise AssertionError("loop function not found in the IR")


def _callees(body):
    return set(re.findall(r"call [^\n]*?@\"?([\w.$]+)\"?\(", body))


def _asm_libm_refs(asm):
    # symbols named in instructions (calls through registers load them with movabsq $expf)
    return {m.group(1) for line in asm.splitlines() if not line.lstrip().startswith((".", "#"))
            for m in _LIBM_IN_ASM.finditer(line.split("#")[0]) if "$" + m.group(1) in line
            or "call" in line}


@pytest.mark.parametrize("name,suffix", CASES, ids=IDS)
def test_loop_vectorises_without_libm_calls(name, suffix):
    loop = kernel(name, suffix)
    T = NBTYPE[suffix][::1]
    ir_text = loop.inspect_llvm((T, T))
    body = _kernel_function(ir_text)
    elt = "float" if suffix == "f32" else "double"
    # the loop was vectorised: LLVM's marker, and vector float arithmetic of width >= 2
    assert "llvm.loop.isvectorized" in ir_text
    assert re.search(r"@llvm\.fmuladd\.v(\d+)f(32|64)\(", body)
    vec_ops = re.findall(rf"= (?:fmul|fadd|fsub|fdiv|select|fcmp \w+) [^\n]*<(\d+) x {elt}>", body)
    widths = {int(w) for w in vec_ops}
    assert widths and max(widths) >= 2, widths
    # strict IEEE arithmetic (no fast-math flags, e.g. no reciprocal-estimate divisions)
    assert not _FAST_FLAGS.search(body), _FAST_FLAGS.search(body).group(0)
    # nothing is called but single-instruction intrinsics: no libm, no numba helpers, and no
    # un-inlined vmath function
    callees = _callees(body)
    assert callees and all(_CHEAP_INTRINSIC.match(c) for c in callees), callees
    if platform.machine().lower() in ("x86_64", "amd64"):
        asm = loop.inspect_asm((T, T))
        packed = "ps" if suffix == "f32" else "pd"
        assert re.search(rf"\bv?(?:fn?m(?:add|sub)\d*|mul|add|sub|div){packed}\b", asm)
        assert not _asm_libm_refs(asm)


def test_detector_flags_a_libm_loop():
    # the same checks fail on a loop that calls math.exp: LLVM "vectorises" it into
    # llvm.exp.v16f32, which without SVML becomes 16 scalar expf calls
    @njit
    def libm_loop(x, out):
        for i in range(x.shape[0]):
            out[i] = math.exp(x[i])

    T = float32[::1]
    libm_loop.compile((T, T))
    callees = _callees(_kernel_function(libm_loop.inspect_llvm((T, T))))
    assert any(c.startswith("llvm.exp.") for c in callees)
    assert not all(_CHEAP_INTRINSIC.match(c) for c in callees)
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert _asm_libm_refs(libm_loop.inspect_asm((T, T))) == {"expf"}
