#!/usr/bin/env python3
"""Independent check of `mpno audit` with NumPy (tests/audit.rs runs it when numpy is present).

Reads DIR/activation.safetensors (written by `mpno audit --save-activation`: the first audited
layer's captured activation of the first sample at the coarsest grid, `coarse` (channels, s, s),
and at the native grid, `fine` (channels, S, S), in float64) and DIR/audit.csv, and recomputes
with NumPy's FFT, for that layer and sample:

- every model-I precision row at s and S whose format NumPy can round (fp32, fp16 with numpy's
  correctly rounded float16 cast, bf16 by round-to-nearest-even on the float32 bits):
  max over channels |fft2(round(v)) / n - fft2(v) / n| at the row's mode; must agree to 1e-12;
- every discretization row at s: max over channels |fft2(coarse)/s^2 - fft2(fine)/S^2| at the
  mode (the coefficients of the coarse grid vs the native grid); must agree to 1e-12;

and checks that every row of audit.csv has measured <= bound, or an infinite bound with a note.
The safetensors file is parsed here (8-byte little-endian header length, JSON header, raw
little-endian data), so only numpy is needed.

Usage: python3 scripts/audit_check.py DIR      (exit 1 on any disagreement)
"""

import csv
import json
import struct
import sys

import numpy as np

TOL = 1e-12


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    kinds = {"F64": "<f8", "F32": "<f4"}
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[base + a : base + b], dtype=kinds[t["dtype"]]).reshape(
            t["shape"]
        )
    return out, meta


def round_to(x, fmt):
    """x rounded to the format (round to nearest even), or None when numpy cannot do it."""
    if fmt == "fp32":
        return x.astype(np.float32).astype(np.float64)
    if fmt == "fp16":
        return x.astype(np.float16).astype(np.float64)
    if fmt == "bf16":
        f = x.astype(np.float32)
        # The activations are float32 values; rounding their bits is then exact RNE.
        if not np.array_equal(f.astype(np.float64), x):
            return None
        u = f.view(np.uint32).astype(np.uint64)
        u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
        return u.astype(np.uint32).view(np.float32).astype(np.float64)
    return None


def coeffs(v):
    """Normalised DFT per channel: fft2 / n (mpno's F_s(v)(w))."""
    return np.fft.fft2(v, axes=(1, 2)) / (v.shape[1] * v.shape[2])


def at(c, mode, s):
    return c[:, mode[0] % s, mode[1] % s]


def main(folder):
    acts, meta = load_safetensors(f"{folder}/activation.safetensors")
    layer, sample = int(meta["layer"]), meta["sample"]
    s, big = int(meta["s"]), int(meta["native"])
    grids = {s: acts["coarse"], big: acts["fine"]}
    ref = {k: coeffs(v) for k, v in grids.items()}
    rounded = {}
    checked = {"precision": 0, "discretization": 0}
    skipped, worst, failures, bound_fail, rows = 0, 0.0, [], [], 0
    with open(f"{folder}/audit.csv", newline="") as f:
        for r in csv.DictReader(f):
            rows += 1
            measured, bound = float(r["measured"]), float(r["bound"])
            if not (measured <= bound or (bound == float("inf") and r["note"])):
                bound_fail.append(r)
            if r["function"] != f"fno:block{layer}" or r["sample"] != sample:
                continue
            res = int(r["s"])
            mode = [int(k) for k in r["mode"].split(":")]
            if r["kind"] == "precision" and r["model"] == "input" and res in grids:
                key = (r["format"], res)
                if key not in rounded:
                    q = round_to(grids[res], r["format"])
                    rounded[key] = None if q is None else coeffs(q)
                if rounded[key] is None:
                    skipped += 1
                    continue
                mine = np.max(np.abs(at(rounded[key], mode, res) - at(ref[res], mode, res)))
            elif r["kind"] == "discretization" and res == s:
                mine = np.max(np.abs(at(ref[s], mode, s) - at(ref[big], mode, big)))
            else:
                continue
            checked[r["kind"]] += 1
            diff = abs(mine - measured)
            worst = max(worst, diff)
            if not diff <= TOL:
                failures.append((r["kind"], r["format"], res, r["mode"], measured, mine))
    print(
        f"layer {layer}, sample {sample}, s = {s} and {big}: checked "
        f"{checked['precision']} model-I precision rows and {checked['discretization']} "
        f"discretization rows against numpy (largest difference {worst:.3e}, tolerance {TOL:g}); "
        f"{skipped} rows in formats numpy cannot round skipped; {rows} rows checked against "
        f"their bounds, {len(bound_fail)} above"
    )
    for fl in failures[:10]:
        print("DISAGREES (kind, format, s, mode, mpno, numpy):", fl)
    for r in bound_fail[:10]:
        print("ABOVE ITS BOUND:", dict(r))
    ok = (
        not failures
        and not bound_fail
        and checked["precision"] > 0
        and checked["discretization"] > 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
