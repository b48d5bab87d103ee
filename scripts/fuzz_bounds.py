#!/usr/bin/env python3
"""Random `mpno errors` runs, each row checked against its bound: a measured error above its
bound (or a NaN in either) is a bug, and so is an exit code other than 0 (done) or 2 (a usage error).

Draws functions (built-ins and expressions, amplitudes from 1e-320 to 1e300 and fp16's 65504),
dimensions 1-3, grid sizes (powers of two or not, 1 to 300), modes, formats (scaled fp8
included), models and FFT algorithms for --basis fourier, 1-3-D runs of chebyshev and of the
wavelets (haar, db2, db4, ...; modes j:t:k_1:..:k_d in d-D), and spherical runs with built-ins and
expressions. Combinations the CLI refuses are redrawn where the rule
is simple (radix-2/4 sizes, scaled formats under models arithmetic*) and otherwise counted as
usage errors. Standard library only.

Usage: scripts/fuzz_bounds.py [--runs N] [--seed S] [--bin PATH] [--other F] [--bases LIST]
(--other: the share of runs in the other bases, default 0.25; --bases: which of them, default
haar,db2,db4,chebyshev,spherical).
Prints one line per run and a summary; exits 1 if any run broke a bound or crashed.
"""
import argparse
import csv
import math
import os
import random
import subprocess
import sys
import tempfile

FOURIER = {
    1: ["one", "const:c=2", "x", "linear:a=1000", "x2", "poly:c=1;-2;3",
        "trig:c=0.5,f=1;3,cos=1;0.5,sin=0;2", "aliased:w=3", "square", "abs_half", "expsin",
        "lowercos:L=1", "randsines:k=10,fmax=16", "const:c=1e-300", "const:c=70000",
        "linear:a=1e-310", "linear:a=1e38", "const:c=1e300", "exp(-x^2)", "1e-30*sin(2*pi*x)",
        "65504*cos(2*pi*3*x)", "abs(sin(7*x))", "sqrt(x+1e-9)", "1e-42*exp(x)", "300*x*(1-x)",
        "sign(x-0.3)", "tanh(50*(x-0.5))", "1e-320*x"],
    2: ["expsin_diag", "prod(x,expsin)", "exp(-x^2)*sin(2*pi*y)", "x*y",
        "1e-40*cos(2*pi*(x+y))", "60000*sin(2*pi*x)*cos(2*pi*y)", "abs(x-y)", "one", "square"],
    3: ["expsin_diag", "x*y*z", "exp(-(x^2+y^2+z^2))", "one", "1e5*sin(2*pi*(x+y+z))"],
}
OTHER_1D = ["x", "x2", "expsin", "abs_half", "square", "exp(-x^2)", "1e-30*sin(2*pi*x)",
            "65504*cos(2*pi*3*x)", "const:c=70000", "tanh(50*(x-0.5))", "linear:a=1e38"]
# Beyond FOURIER's, for the d-D wavelets: not periodic (every face jump charged), kinks, tiny
# and huge amplitudes.
WAVELET_ND = {
    2: ["abs(x-0.3)*exp(y)", "abs(sin(pi*(x-0.3)))*exp(sin(2*pi*y))", "1e-300*x*y",
        "tanh(30*(x-y))", "prod(abs_half,x2)", "1e30*(x+y)"],
    3: ["x + y*z", "abs_half", "prod(x,expsin,abs_half)", "1e-30*exp(x*y*z)",
        "abs(x-0.5)*sin(2*pi*(y+z))"],
}
SPHERICAL = ["ylm:l=3,m=2", "ylm:l=0,m=0", "cap", "cap:kappa=5", "abscos",
             # Expressions in the point's Cartesian coordinates.
             "z", "exp(x)*sin(3*y) + z^2", "abs(x) - y", "tanh(20*z)", "1e-30*x*y",
             "65504*z^3", "1e38*x*z", "1e-320*y", "sign(x)*y", "1e300*exp(x)"]
FORMATS = ["fp64", "fp32", "tf32", "bf16", "fp16", "e5m2", "e4m3", "e4m3sat"]
SCALED = ["e4m3@tensor", "e5m2@mx", "e4m3@channel", "e4m3@mx8", "e4m3@tensor~m2"]
MODELS = ["input", "storage", "arithmetic", "arithmetic-scaled", "gemm"]
ALGORITHMS = ["auto", "radix2", "radix4", "bluestein", "naive"]


def fourier_args(rng):
    dim = rng.choice([1, 1, 1, 2, 2, 3])
    sizes = {rng.randint(1, {1: 300, 2: 48, 3: 12}[dim]) for _ in range(rng.randint(1, 3))}
    if rng.random() < 0.4:
        sizes.add(2 ** rng.randint(1, {1: 10, 2: 6, 3: 4}[dim]))
    algorithm = rng.choice(ALGORITHMS)
    if algorithm in ("radix2", "radix4"):
        sizes = {2 ** max(1, s.bit_length() - 1) for s in sizes}
    models = rng.sample(MODELS, rng.randint(1, 3))
    formats = rng.sample(FORMATS + SCALED, rng.randint(1, 4))
    if any(m.startswith("arithmetic") for m in models):
        formats = [f for f in formats if "@" not in f] or ["fp16"]
    if "input" not in models:
        formats = [f for f in formats if "@channel" not in f] or ["fp16"]
    modes = sorted({rng.randint(-5, 6) for _ in range(2)})
    return ["--function", rng.choice(FOURIER[dim]), "--dim", str(dim),
            "--sizes", ",".join(map(str, sorted(sizes))), "--modes", ",".join(map(str, modes)),
            "--formats", ",".join(formats), "--models", ",".join(models),
            "--algorithm", algorithm, "--seed", str(rng.randint(0, 99))]


def other_basis_args(rng, bases):
    basis = rng.choice(bases)
    models = ["input", "storage", "arithmetic"] + (["gemm"] if basis == "chebyshev" else [])
    if basis == "spherical":
        function = rng.choice(SPHERICAL)
        sizes = {rng.choice([4, 6, 8, 12, 16, 24, 32]) for _ in range(2)}
        modes = "0:0,2:0,3:2"
    elif basis == "chebyshev":
        dim = rng.choice([1, 1, 2, 3])
        if dim == 1:
            function = rng.choice(OTHER_1D)
            sizes = {rng.randint(1, 200) for _ in range(2)}
            modes = ",".join(map(str, sorted({rng.randint(0, 8) for _ in range(2)})))
        else:
            function = rng.choice(FOURIER[dim])
            picks = [[rng.randint(0, 4) for _ in range(dim)] for _ in range(2)]
            low = max(max(p) for p in picks) + 1
            sizes = {rng.randint(low, {2: 40, 3: 10}[dim] + low) for _ in range(2)}
            modes = ",".join(":".join(map(str, p)) for p in picks)
        return ["--basis", basis, "--dim", str(dim), "--function", function,
                "--sizes", ",".join(map(str, sorted(sizes))), "--modes", modes,
                "--formats", ",".join(rng.sample(FORMATS, rng.randint(1, 3))),
                "--models", ",".join(rng.sample(models, rng.randint(1, 2))),
                "--seed", str(rng.randint(0, 99))]
    else:
        dim = rng.choice([1, 1, 2, 3])
        if dim > 1:
            # Wavelets in 2-D / 3-D: modes j:t:k_1:..:k_d that exist at the smallest size.
            function = rng.choice(FOURIER[dim] + WAVELET_ND[dim])
            sizes = {2 ** rng.randint(1, {2: 7, 3: 4}[dim]) for _ in range(2)}
            levels = min(sizes).bit_length() - 1
            picks = ["-1:0" + ":0" * dim]
            for _ in range(2):
                j = rng.randint(0, levels - 1)
                t = rng.randint(1, 2 ** dim - 1)
                ks = [rng.randint(0, 2 ** j - 1) for _ in range(dim)]
                picks.append(":".join(map(str, [j, t] + ks)))
            return ["--basis", basis, "--dim", str(dim), "--function", function,
                    "--sizes", ",".join(map(str, sorted(sizes))), "--modes", ",".join(picks),
                    "--formats", ",".join(rng.sample(FORMATS, rng.randint(1, 3))),
                    "--models", ",".join(rng.sample(models, rng.randint(1, 2)))]
        function = rng.choice(OTHER_1D)
        sizes = {2 ** rng.randint(3, 9) for _ in range(2)}
        modes = "-1:0,0:0,2:1"
    return ["--basis", basis, "--function", function, "--sizes", ",".join(map(str, sorted(sizes))),
            "--modes", modes, "--formats", ",".join(rng.sample(FORMATS, rng.randint(1, 3))),
            "--models", ",".join(rng.sample(models, rng.randint(1, 2)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--other", type=float, default=0.25)
    ap.add_argument("--bases", default="haar,db2,db4,chebyshev,spherical")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "target",
                                                  "release", "mpno"))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    broken, usage, rows_checked = 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rows.csv")
        for run in range(a.runs):
            if rng.random() < 1.0 - a.other:
                args = fourier_args(rng)
            else:
                args = other_basis_args(rng, a.bases.split(","))
            if os.path.exists(out):
                os.remove(out)
            p = subprocess.run([a.bin, "errors", *args, "--out", out], capture_output=True,
                               text=True, timeout=900)
            cmd = "mpno errors " + " ".join(f"'{x}'" if any(c in x for c in " ;()*") else x
                                            for x in args)
            if p.returncode not in (0, 2) or "panicked" in p.stderr:
                print(f"CRASH (exit {p.returncode}): {cmd}\n{p.stderr[-800:]}")
                broken += 1
                continue
            if p.returncode == 2:
                usage += 1
                print(f"usage error: {cmd} | {p.stderr.strip().splitlines()[-1][:160]}")
                continue
            rows = list(csv.DictReader(open(out)))
            for r in rows:
                measured = float(r["measured"])
                bound = float(r["bound"]) if r["bound"] else math.inf
                if math.isnan(measured) or math.isnan(bound) or measured > bound:
                    keys = ("s", "mode", "kind", "format", "model", "measured", "bound", "note")
                    print(f"ABOVE ITS BOUND: {cmd}\n  {({k: r[k] for k in keys})}")
                    broken += 1
            rows_checked += len(rows)
            print(f"ok ({len(rows)} rows): {cmd}", flush=True)
    print(f"{a.runs} runs, {usage} usage errors, {rows_checked} rows checked, {broken} broken")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
