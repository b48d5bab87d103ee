#!/usr/bin/env python3
"""Generate tests/fixtures/basis_crosscheck.json: independent reference values for the bases.

- DWT: PyWavelets `wavedec(x, 'dbN', mode='periodization', level=J)` (all levels) for db1..db10
  on seeded random inputs of length 64, and one single-level `dwt` of length 32.
- SHT: a direct double sum in NumPy/SciPy, c_lm = sum_ij w_i (2 pi / nlon) f_ij Y_lm(theta_i, phi_j),
  with Y_lm built from scipy.special.lpmv and factorial normalisation (Condon-Shortley phase
  removed) on numpy's Gauss-Legendre nodes; nlat = 12, nlon = 24, l <= 11.
- Chebyshev: numpy.polynomial.chebyshev.chebfit of degree N through the N + 1 Lobatto points.
- Chebyshev in 2-D: a random polynomial (degree < N per axis) evaluated by
  numpy.polynomial.chebyshev.chebgrid2d on the 6 x 8 Lobatto grid (N = 5, 7): the transform must
  give back its coefficients. In 3-D: scipy.fft.dctn(type=1) of random samples on the 4 x 5 x 6
  grid (N = 3, 4, 5), scaled to the interpolant's coefficients prod_a f(k_a) / (2 N_a)
  (f = 1 at 0 and N, else 2).

With --wavedecn it instead writes tests/fixtures/wavelet_nd_crosscheck.json: PyWavelets
`wavedecn(x, name, mode='periodization', level=log2 n)` on seeded random cubes (2-D: haar n=8,
db2 n=8, db4 n=16, db10 n=8; 3-D: haar n=4, db2 n=8, db3 n=4), flattened in C order through
`coeffs_to_array` (the Mallat layout of mpno's DwtNd; the script asserts that layout against
its own per-axis pywt.dwt recursion and against explicit placement of the wavedecn dicts).

Run: python3 -m venv /tmp/bvenv && /tmp/bvenv/bin/pip install pywavelets numpy scipy  (versions used: see "versions")
     /tmp/bvenv/bin/python scripts/basis_fixture.py > tests/fixtures/basis_crosscheck.json
     /tmp/bvenv/bin/python scripts/basis_fixture.py --wavedecn > tests/fixtures/wavelet_nd_crosscheck.json
"""

import json
import math
import sys
import warnings

import numpy as np
import pywt
import scipy
from numpy.polynomial import chebyshev as C
from scipy.fft import dctn
from scipy.special import lpmv

warnings.simplefilter("ignore")  # pywt warns when level exceeds dwt_max_level


def dwt_cases():
    rng = np.random.RandomState(20240601)
    out = []
    for order in range(1, 11):
        name = f"db{order}"
        x = rng.uniform(-1.0, 1.0, 64)
        coeffs = pywt.wavedec(x, name, mode="periodization", level=6)
        out.append({
            "wavelet": name,
            "offset": 1 - order,
            "input": x.tolist(),
            "wavedec": np.concatenate(coeffs).tolist(),
        })
        y = rng.uniform(-1.0, 1.0, 32)
        ca, cd = pywt.dwt(y, name, mode="periodization")
        out.append({
            "wavelet": name,
            "offset": 1 - order,
            "input": y.tolist(),
            "single_level": np.concatenate([ca, cd]).tolist(),
        })
    return out


def real_ylm(l, m, theta, phi):
    am = abs(m)
    norm = math.sqrt((2 * l + 1) / (4 * math.pi) * math.exp(math.lgamma(l - am + 1) - math.lgamma(l + am + 1)))
    # lpmv includes the Condon-Shortley phase (-1)^m; mpno's basis does not.
    p = (-1) ** am * lpmv(am, l, np.cos(theta)) * norm
    if m == 0:
        return p
    if m > 0:
        return math.sqrt(2) * p * np.cos(m * phi)
    return math.sqrt(2) * p * np.sin(am * phi)


def sht_case():
    nlat, nlon = 12, 24
    x, w = np.polynomial.legendre.leggauss(nlat)
    x, w = x[::-1], w[::-1]  # north to south, as mpno
    theta = np.arccos(x)
    phi = 2 * np.pi * np.arange(nlon) / nlon
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    f = np.exp(np.sin(th) * np.cos(ph)) * np.cos(th) + np.sin(th) ** 2 * np.sin(2 * ph) + 0.3 * np.abs(np.cos(th))
    coeffs = []
    for l in range(nlat):
        for m in range(-l, l + 1):
            y = real_ylm(l, m, th, ph)
            coeffs.append(float(np.sum(w[:, None] * (2 * np.pi / nlon) * f * y)))
    return {
        "nlat": nlat,
        "nlon": nlon,
        "nodes": x.tolist(),
        "weights": w.tolist(),
        "samples": f.ravel().tolist(),
        "coefficients": coeffs,
    }


def chebyshev_case():
    n = 16
    t = np.sin(np.pi * (n - 2.0 * np.arange(n + 1)) / (2.0 * n))  # cos(pi j / n), symmetric form
    v = np.exp(t) * np.sin(3 * t) + np.abs(t - 0.2)
    a = C.chebfit(t, v, n)
    return {"n": n, "samples": v.tolist(), "coefficients": a.tolist()}


def lobatto(n):
    return np.sin(np.pi * (n - 2.0 * np.arange(n + 1)) / (2.0 * n))


def chebyshev_2d_case():
    rng = np.random.RandomState(20261207)
    n = (5, 7)
    c = np.zeros((n[0] + 1, n[1] + 1))
    c[: n[0], : n[1]] = rng.uniform(-1.0, 1.0, (n[0], n[1]))
    v = C.chebgrid2d(lobatto(n[0]), lobatto(n[1]), c)
    return {"n": list(n), "samples": v.ravel().tolist(), "coefficients": c.ravel().tolist()}


def chebyshev_3d_case():
    rng = np.random.RandomState(20261208)
    n = (3, 4, 5)
    v = rng.uniform(-1.0, 1.0, tuple(k + 1 for k in n))
    a = dctn(v, type=1)
    for axis, nk in enumerate(n):
        f = np.full(nk + 1, 2.0)
        f[0] = f[nk] = 1.0
        shape = [1, 1, 1]
        shape[axis] = nk + 1
        a = a * (f / (2.0 * nk)).reshape(shape)
    return {"n": list(n), "samples": v.ravel().tolist(), "coefficients": a.ravel().tolist()}


def mallat_by_axes(x, name):
    """The Mallat layout built directly: per level, one single-level pywt.dwt along axis 0, 1, ...
    of the approximation corner [0, len)^d, lowpass to [0, len/2), highpass to [len/2, len)."""
    c = np.array(x, dtype=float)
    d = c.ndim
    length = c.shape[0]
    while length >= 2:
        corner = (slice(0, length),) * d
        sub = c[corner].copy()
        for axis in range(d):
            ca, cd = pywt.dwt(sub, name, mode="periodization", axis=axis)
            sub = np.concatenate([ca, cd], axis=axis)
        c[corner] = sub
        length //= 2
    return c


def mallat_from_dicts(coeffs, n, d):
    """The Mallat layout placed by hand from wavedecn's output: coeffs[0] (1^d) at the origin;
    the level-j dict (j = 0 coarsest) puts key character 'd' on axis a at [2^j, 2^(j+1)) and 'a'
    at [0, 2^j)."""
    out = np.full((n,) * d, np.nan)
    out[(slice(0, 1),) * d] = coeffs[0]
    for j, det in enumerate(coeffs[1:]):
        h = 2 ** j
        assert len(det) == 2 ** d - 1
        for key, block in det.items():
            assert block.shape == (h,) * d
            sl = tuple(slice(h, 2 * h) if ch == "d" else slice(0, h) for ch in key)
            out[sl] = block
    assert not np.isnan(out).any()
    return out


def wavedecn_cases():
    rng = np.random.RandomState(20261209)
    out = []
    for name, dim, n in [("haar", 2, 8), ("db2", 2, 8), ("db4", 2, 16), ("db10", 2, 8),
                         ("haar", 3, 4), ("db2", 3, 8), ("db3", 3, 4)]:
        levels = n.bit_length() - 1
        x = rng.uniform(-1.0, 1.0, (n,) * dim)
        coeffs = pywt.wavedecn(x, name, mode="periodization", level=levels)
        arr, _ = pywt.coeffs_to_array(coeffs)
        assert arr.shape == (n,) * dim
        # the layout claim, two independent ways (pywt's per-axis dwt is a separate code path)
        assert np.array_equal(arr, mallat_from_dicts(coeffs, n, dim)), name
        assert np.max(np.abs(arr - mallat_by_axes(x, name))) <= 1e-13, name
        rec = pywt.waverecn(coeffs, name, mode="periodization")
        assert np.max(np.abs(rec - x)) <= 1e-12, name
        out.append({
            "wavelet": name,
            "dim": dim,
            "n": n,
            "input": x.ravel().tolist(),
            "coeffs": arr.ravel().tolist(),
        })
    return out


def versions():
    return {"pywt": pywt.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "python": sys.version.split()[0]}


def main():
    if sys.argv[1:] == ["--wavedecn"]:
        doc = {"generator": "scripts/basis_fixture.py --wavedecn", "versions": versions(),
               "wavedecn": wavedecn_cases()}
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    if sys.argv[1:]:
        sys.exit("usage: basis_fixture.py [--wavedecn]")
    doc = {
        "generator": "scripts/basis_fixture.py",
        "versions": versions(),
        "dwt": dwt_cases(),
        "sht": sht_case(),
        "chebyshev": chebyshev_case(),
        "chebyshev_2d": chebyshev_2d_case(),
        "chebyshev_3d": chebyshev_3d_case(),
    }
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
