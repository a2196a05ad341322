"""Fit the polynomial coefficients used by graphc/codegen/vmath.py (offline tool).

Needs mpmath (not a graphc dependency):  PYTHONPATH=/path/to/mpmath python tools/vmath_fit.py [name]

A plain linear Remez exchange: approximate F(u) on [a, b] by sum_k c_k * u**k, minimising
max |w(u) * (F(u) - P(u))| over a dense grid.  The coefficients are then rounded to the target
precision from the highest degree down, re-fitting the lower ones after each rounding, so the
rounded set is still near-minimax.  The printed numbers are pasted into vmath.py.
"""
import sys

import mpmath as mp
import numpy as np

mp.mp.dps = 50


def remez(F, w, a, b, deg, fixed=(), grid=3000, iters=30):
    """Minimax fit of F on [a, b] by sum_{k<=deg} c_k u^k, weight w.  `fixed` is a tuple of
    already-fixed highest-order coefficients (c_deg, c_deg-1, ...), subtracted from F."""
    nfree = deg + 1 - len(fixed)
    # Chebyshev-like dense grid (denser near the ends)
    us = [mp.mpf(a) + (mp.mpf(b) - a) * (1 - mp.cos(mp.pi * (i + 0.5) / grid)) / 2
          for i in range(grid)]
    Fs = [F(u) for u in us]
    ws = [w(u) for u in us]
    Gs = []
    for u, f in zip(us, Fs):
        s = f
        for j, c in enumerate(fixed):
            s -= c * u ** (deg - j)
        Gs.append(s)
    n = nfree + 1
    # initial reference: Chebyshev extrema
    idx = [int(round((grid - 1) * (1 - mp.cos(mp.pi * i / (n - 1))) / 2)) for i in range(n)]
    best = None
    for _ in range(iters):
        A = mp.matrix(n, n)
        rhs = mp.matrix(n, 1)
        for r, i in enumerate(idx):
            for k in range(nfree):
                A[r, k] = us[i] ** k
            A[r, nfree] = (-1) ** r / ws[i]
            rhs[r] = Gs[i]
        sol = mp.lu_solve(A, rhs)
        c = [sol[k] for k in range(nfree)]
        E = abs(sol[nfree])
        err = []
        for u, g, wt in zip(us, Gs, ws):
            p = mp.mpf(0)
            for ck in reversed(c):
                p = p * u + ck
            err.append(wt * (g - p))
        emax = max(abs(e) for e in err)
        best = (c, emax)
        if emax <= E * (1 + mp.mpf('1e-6')):
            break
        # new reference: one extremum per sign run
        runs = []
        start = 0
        for i in range(1, grid + 1):
            if i == grid or mp.sign(err[i]) != mp.sign(err[start]):
                j = max(range(start, i), key=lambda t: abs(err[t]))
                runs.append(j)
                start = i
        while len(runs) > n:
            # drop the smaller end
            if abs(err[runs[0]]) < abs(err[runs[-1]]):
                runs.pop(0)
            else:
                runs.pop()
        if len(runs) < n:
            break
        idx = runs
    return best


def round_to(c, dtype):
    if dtype == np.float32:
        return mp.mpf(float(np.float32(float(c))))
    return mp.mpf(float(c))


def fit_rounded(F, w, a, b, deg, dtype, keep_exact=0, **kw):
    """Fit, then round coefficients high degree first, re-fitting the rest each time.
    Returns (coeffs low->high as dtype values, weighted max error after rounding)."""
    fixed = ()
    for k in range(deg, keep_exact - 1, -1):
        c, e = remez(F, w, a, b, deg, fixed=fixed, **kw)
        fixed = fixed + (round_to(c[k], dtype),)
    coeffs = list(reversed(fixed))
    # weighted error of the rounded polynomial on a uniform grid
    us = [mp.mpf(a) + (mp.mpf(b) - a) * i / 4000 for i in range(4001)]
    emax = 0
    for u in us:
        p = mp.mpf(0)
        for ck in reversed(coeffs):
            p = p * u + ck
        emax = max(emax, abs(w(u) * (F(u) - p)))
    return coeffs, emax


# ---------------------------------------------------------------- targets
def _nz(u):
    return u if u != 0 else mp.mpf('1e-30')


# exp / expm1 core:  expm1(r) = r + r^2 * Q(r); weight = relative error of expm1(r)
def expm1_target(r):
    r = _nz(r)
    return (mp.expm1(r) - r) / r ** 2


def expm1_weight(r):
    r = _nz(r)
    return abs(r ** 2 / mp.expm1(r))


# log core: log(1+f) = 2 atanh(s), s = f/(2+f);  2 atanh(s) = 2 s + s * z * P(z), z = s^2
def log_target(z):
    z = _nz(z)
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) / s - 2) / z


def log_weight(z):
    return z / 2


# erf, small |x|:  erf(x) = x + x * P(x^2)
def erf_small_target(z):
    z = _nz(z)
    x = mp.sqrt(z)
    return mp.erf(x) / x - 1


def erf_small_weight(z):
    z = _nz(z)
    x = mp.sqrt(z)
    return x / mp.erf(x)


def show(name, coeffs, err, dtype):
    print(f"# {name}: max weighted error {mp.nstr(err, 5)} = 2^{mp.nstr(mp.log(err, 2), 5)}")
    for c in coeffs:
        v = float(c) if dtype == np.float64 else float(np.float32(float(c)))
        print("   ", repr(v) + ",")


# erf, |x| >= XA:  erf(x) = 1 - exp(-x^2) * G(u),  u = 1/(1+x);  G ~ erfcx(x)
def erf_big_target(u):
    x = 1 / u - 1
    return mp.exp(x * x) * mp.erfc(x)


def erf_big_weight(u):
    x = 1 / u - 1
    return mp.exp(-x * x) / mp.erf(x)


def erf_fits(dt, xa, xb, dega, degb):
    c, e = fit_rounded(erf_small_target, erf_small_weight, 0, mp.mpf(xa) ** 2, dega, dt, grid=1500)
    show(f"erf small P deg {dega} on [0,{xa}] {dt.__name__}", c, e, dt)
    ua, ub = 1 / (1 + mp.mpf(xb)), 1 / (1 + mp.mpf(xa))
    c, e = fit_rounded(erf_big_target, erf_big_weight, ua, ub, degb, dt, grid=1500)
    show(f"erf big G deg {degb} on [{xa},{xb}] {dt.__name__}", c, e, dt)


if __name__ == "__main__":
    # the configurations used in graphc/codegen/vmath.py (takes a few minutes)
    which = sys.argv[1:] or ["expm1", "log", "erf"]
    if "expm1" in which:   # |r| <= ln2/2 plus a margin for the rounding of n
        R = mp.mpf("0.3466") * mp.mpf("1.01")
        for deg, dt in [(4, np.float32), (10, np.float64)]:
            c, e = fit_rounded(expm1_target, expm1_weight, -R, R, deg, dt)
            show(f"expm1 Q deg {deg} {dt.__name__}", c, e, dt)
    if "log" in which:     # |s| <= 3 - 2*sqrt(2)
        zmax = (3 - 2 * mp.sqrt(2)) ** 2 * mp.mpf("1.0001")
        for deg, dt in [(2, np.float32), (6, np.float64)]:
            c, e = fit_rounded(log_target, log_weight, 0, zmax, deg, dt)
            show(f"log P deg {deg} {dt.__name__}", c, e, dt)
    if "erf" in which:
        erf_fits(np.float32, 1, 4, 6, 5)
        erf_fits(np.float64, 1, 6, 12, 13)
