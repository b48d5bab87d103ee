#!/usr/bin/env python3
"""Real-hardware cross-check of mpno's precision bounds: the error of cuFFT's half-precision FFT
(torch.fft.fft on float16 CUDA tensors) against a float64 FFT of the same samples, for the theory
study's functions on s = 2^4..2^16 (cuFFT half needs powers of two).

Writes CSV to stdout: function,s,mode,model,measured,max_abs,mean_abs where
  model = "cufft-fp16"  (samples rounded to fp16, cuFFT in half precision, output complex32),
          "input-fp16"  (samples rounded to fp16, then a float64 FFT: what a NumPy cast measures),
  mode  = an integer frequency, or "all" for the max over every frequency,
  measured = |X_w / s - X_w^ref / s| with X^ref the float64 FFT of the unrounded samples.
tests/gpu_crosscheck.rs checks each row against mpno's bounds for the same mean|v| and max|v|.

Usage on the GPU machine: python3 scripts/gpu_cufft_fp16.py > $OUT/gpu_cufft_fp16.csv
"""
import math
import sys

import numpy as np
import torch

# The same formulas as mpno expressions (tests/gpu_crosscheck.rs reads these names).
FUNCTIONS = {
    "x": lambda x: x,
    "x^2": lambda x: x * x,
    "1000*x": lambda x: 1000.0 * x,
    "exp(sin(2*pi*x))": lambda x: np.exp(np.sin(2 * np.pi * x)),
    "sin(2*pi*3*x)+0.5*cos(2*pi*17*x)+0.25*sin(2*pi*40*x)": lambda x: np.sin(2 * np.pi * 3 * x)
    + 0.5 * np.cos(2 * np.pi * 17 * x)
    + 0.25 * np.sin(2 * np.pi * 40 * x),
}
MODES = list(range(9))


def main():
    dev = torch.device("cuda")
    print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__}, cuda {torch.version.cuda}", file=sys.stderr)
    print("function,s,mode,model,measured,max_abs,mean_abs")
    for name, f in FUNCTIONS.items():
        for k in range(4, 17):
            s = 1 << k
            v = f(np.arange(s, dtype=np.float64) / s)
            ref = np.fft.fft(v) / s
            h = torch.tensor(v, dtype=torch.float16, device=dev)
            gpu = torch.fft.fft(h).to(torch.complex128).cpu().numpy() / s
            inp = np.fft.fft(h.double().cpu().numpy()) / s
            for model, out in (("cufft-fp16", gpu), ("input-fp16", inp)):
                err = np.abs(out - ref)
                finite = np.all(np.isfinite(out))
                rows = [(str(w), err[w]) for w in MODES] + [("all", err.max())]
                for mode, e in rows:
                    e = e if finite else math.inf
                    print(f"{name},{s},{mode},{model},{e:.17e},{np.abs(v).max():.17e},{np.abs(v).mean():.17e}")


if __name__ == "__main__":
    main()
