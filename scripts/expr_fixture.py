#!/usr/bin/env python3
"""Generate tests/fixtures/expr_coefficients.json: continuous Fourier coefficients
F(v)(w) = integral over [0,1]^d of v(x) exp(-2 pi i <w, x>) dx of user expressions, computed
independently of mpno with mpmath (30 significant digits, tanh-sinh quadrature split at every
kink, jump and narrow feature; closed forms where the integrand is separable or Bessel).

tests/functions_certified.rs checks mpno's quadrature against these values (to its stated
error estimate) and that every row of a sweep of each expression respects its bound.

Run: python3 scripts/expr_fixture.py > tests/fixtures/expr_coefficients.json
     (needs mpmath; version used: see "versions")
"""

import json
import sys

import mpmath as mp

mp.mp.dps = 30
PI = mp.pi


def e(w, x):
    return mp.expj(-2 * PI * w * x)


def q1(f, w, breaks):
    """integral_0^1 f(x) e^{-2 pi i w x} dx, split at breaks (and at the period for w != 0)."""
    pts = sorted(set([mp.mpf(0), mp.mpf(1)] + [mp.mpf(b) for b in breaks if 0 < b < 1]))
    if w != 0:
        n = 4 * abs(w)
        pts = sorted(set(pts + [mp.mpf(k) / n for k in range(1, n)]))
    return mp.quad(lambda x: f(x) * e(w, x), pts, maxdegree=10)


def gauss_breaks(a, width, k=12):
    return [a + j * width for j in range(-k, k + 1)]


# 1-D: (expression as mpno parses it, modes, mpmath function, breakpoints)
A3 = mp.mpf("0.3")
ONE_D = [
    ("exp(-x^2)", [0, 1, 3], lambda x: mp.exp(-x**2), []),
    ("exp(-((x-0.3)*3000)^2)", [0, 5, 40], lambda x: mp.exp(-((x - A3) * 3000) ** 2),
     gauss_breaks(0.3, 1 / 3000)),
    ("exp(-((x-0.3)*1e8)^2)", [0, 1], lambda x: mp.exp(-((x - A3) * mp.mpf(10) ** 8) ** 2),
     gauss_breaks(0.3, 1e-8)),
    ("abs(x-0.3)", [0, 1, 4], lambda x: abs(x - A3), [0.3]),
    ("max(x-0.7, 0)", [0, 2], lambda x: max(x - mp.mpf("0.7"), 0), [0.7]),
    ("tanh((x-0.5)*200)", [0, 1, 3], lambda x: mp.tanh((x - mp.mpf("0.5")) * 200),
     gauss_breaks(0.5, 1 / 200, 20)),
    ("tanh((x-0.37)*1000)", [0, 2], lambda x: mp.tanh((x - mp.mpf("0.37")) * 1000),
     gauss_breaks(0.37, 1 / 1000, 20)),
    ("sign(x-0.3)", [0, 1], lambda x: mp.sign(x - A3), [0.3]),
    ("sqrt(x)", [0, 3], lambda x: mp.sqrt(x), []),
    ("x^1.5", [0, 1], lambda x: x ** mp.mpf("1.5"), []),
    ("1/(1+25*(2*x-1)^2)", [0, 3], lambda x: 1 / (1 + 25 * (2 * x - 1) ** 2), [0.5]),
    ("log(x+0.1)", [0, 2], lambda x: mp.log(x + mp.mpf("0.1")), []),
    ("exp(sin(2*pi*x))", [0, 3], lambda x: mp.exp(mp.sin(2 * PI * x)), []),
    ("cos(2*pi*5*x)^3", [5, 15], lambda x: mp.cos(2 * PI * 5 * x) ** 3, []),
    ("x*sin(40*pi*x)", [20], lambda x: x * mp.sin(40 * PI * x), []),
    ("atan((x-0.5)*100)", [0, 1], lambda x: mp.atan((x - mp.mpf("0.5")) * 100),
     gauss_breaks(0.5, 1 / 100)),
    ("exp(-x)*sin(2*pi*13*x)", [13, 0], lambda x: mp.exp(-x) * mp.sin(2 * PI * 13 * x), []),
    ("(x-0.5)^2*sign(x-0.5)", [0, 1], lambda x: (x - mp.mpf("0.5")) ** 2 * mp.sign(x - mp.mpf("0.5")),
     [0.5]),
    ("-x^2+2^3^2*x", [0, 2], lambda x: -(x**2) + 512 * x, []),
    ("1e-3*exp(-x^2/2)", [0, 1], lambda x: mp.mpf("1e-3") * mp.exp(-(x**2) / 2), []),
]


def g1(a, c):
    """integral_0^1 exp(-c (x - a)^2) e^{-2 pi i w x} dx as a function of w (narrow Gaussian)."""
    return lambda w: q1(lambda x: mp.exp(-c * (x - a) ** 2), w, gauss_breaks(float(a), 0.2 / mp.sqrt(c)))


def prod(*fs):
    """Separable: the coefficient is the product of the factors' 1-D coefficients."""
    return lambda w: mp.fprod(f(wi) for f, wi in zip(fs, w))


def poly1(p):
    return lambda w: q1(p, w, [])


def nested2(f, inner_breaks):
    """integral over [0,1]^2, x outer, y inner split at inner_breaks(x)."""

    def coef(w):
        def inner(x):
            return q1(lambda y: f(x, y), w[1], inner_breaks(x))

        return mp.quad(lambda x: inner(x) * e(w[0], x), [0, 0.25, 0.5, 0.75, 1], maxdegree=8)

    return coef


BESSEL_I1 = mp.besseli(1, 1)

MULTI = [
    ("x*y", 2, [[0, 0], [1, 2]], prod(poly1(lambda x: x), poly1(lambda x: x))),
    ("exp(sin(2*pi*(x+y)))", 2, [[1, 1], [1, 0]],
     lambda w: BESSEL_I1 * (-1j) if w[0] == w[1] == 1 else mp.mpf(0)),
    ("exp(-((x-0.4)^2+(y-0.6)^2)*400)", 2, [[0, 0], [1, -1]],
     prod(g1(mp.mpf("0.4"), 400), g1(mp.mpf("0.6"), 400))),
    ("abs(x-y)", 2, [[0, 0], [1, 1], [1, -1]], nested2(lambda x, y: abs(x - y), lambda x: [x])),
    ("sin(2*pi*x*y)", 2, [[0, 0], [1, 1]], nested2(lambda x, y: mp.sin(2 * PI * x * y), lambda x: [])),
    ("tanh((x+y-1)*50)", 2, [[0, 0], [1, 1]],
     nested2(lambda x, y: mp.tanh((x + y - 1) * 50), lambda x: gauss_breaks(float(1 - x), 1 / 50, 10))),
    ("x*y*z", 3, [[0, 0, 0], [1, 1, 1]], prod(*[poly1(lambda x: x)] * 3)),
    ("exp(sin(2*pi*(x+y+z)))", 3, [[1, 1, 1]], lambda w: BESSEL_I1 * (-1j)),
    ("x*y*exp(-((z-0.7)*20)^2)", 3, [[0, 0, 0], [1, 0, -1]],
     prod(poly1(lambda x: x), poly1(lambda y: y), g1(mp.mpf("0.7"), 400))),
    ("cos(2*pi*(x+2*y-z))", 3, [[1, 2, -1], [0, 0, 0]],
     lambda w: mp.mpf("0.5") if list(w) == [1, 2, -1] else mp.mpf(0)),
    ("sin(2*pi*x)*y^2*exp(z)", 3, [[1, 0, 0], [1, 2, 3]],
     prod(poly1(lambda x: mp.sin(2 * PI * x)), poly1(lambda y: y**2), poly1(lambda z: mp.exp(z)))),
]


def cx(z):
    z = mp.mpc(z)
    return [mp.nstr(z.real, 25), mp.nstr(z.imag, 25)]


def main():
    cases = []
    for text, modes, f, breaks in ONE_D:
        cases.append({
            "expr": text,
            "dim": 1,
            "modes": [[w] for w in modes],
            "coefficients": [cx(q1(f, w, breaks)) for w in modes],
        })
        print(f"done {text}", file=sys.stderr)
    for text, dim, modes, coef in MULTI:
        cases.append({
            "expr": text,
            "dim": dim,
            "modes": modes,
            "coefficients": [cx(coef(w)) for w in modes],
        })
        print(f"done {text}", file=sys.stderr)
    json.dump({
        "generator": "scripts/expr_fixture.py",
        "versions": {"mpmath": mp.__version__, "python": sys.version.split()[0]},
        "dps": mp.mp.dps,
        "cases": cases,
    }, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
