#!/usr/bin/env python3
"""Model-I (input rounding) sweep in NumPy, the way a NumPy user measures fp16 "precision error":
cast the samples with astype(float16), transform with np.fft in float64, compare with the float64
transform of the unrounded samples. Same function, sizes, and modes as

    mpno errors --function x2 --sizes 2^4..2^20 --modes 0,1,2,3,4,5,6,7,8 --formats fp16 --models input

Usage: python3 benches/numpy_model1.py [--repeat 5]
Prints the best wall time of the whole sweep over the repeats (seconds) and the max error.
"""
import argparse
import time

import numpy as np


def sweep():
    worst = 0.0
    for k in range(4, 21):
        s = 1 << k
        x = np.arange(s, dtype=np.float64) / s
        v = x * x
        ref = np.fft.fft(v) / s
        low = np.fft.fft(v.astype(np.float16).astype(np.float64)) / s
        err = np.abs(low[:9] - ref[:9])
        worst = max(worst, float(err.max()))
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    best = float("inf")
    for _ in range(a.repeat):
        t = time.perf_counter()
        worst = sweep()
        best = min(best, time.perf_counter() - t)
    print(f"numpy {np.__version__} model-I fp16 sweep 2^4..2^20: best {best:.4f} s, max error {worst:.3e}")


if __name__ == "__main__":
    main()
