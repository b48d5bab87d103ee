"""Open `mpno datagen` files with Python's safetensors and check them.

Usage: python3 docs/datagen_check.py darcy.safetensors ns.safetensors burgers.safetensors

The first loop is the snippet of docs/datagen.md; the checks after it test what the files
promise: shapes agree with the metadata, Darcy solutions vanish on the boundary and have
residuals below the tolerance, Navier-Stokes times end at t_final, everything is finite.
"""

import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def main(paths):
    for path in paths:
        data = load_file(path)  # dict name -> numpy array
        with safe_open(path, framework="np") as f:  # the metadata (string -> string)
            meta = f.metadata()
        print(path, meta["equation"], "seed", meta["seed"], "resolution", meta["resolution"])
        for name, array in sorted(data.items()):
            print(f"  {name:10s} {array.dtype} {array.shape}")

        n, r = int(meta["n"]), int(meta["resolution"])
        for name, array in data.items():
            assert np.all(np.isfinite(array)), f"{path}: {name} has non-finite values"
        eq = meta["equation"]
        if eq == "darcy":
            a, u = data["a"], data["u"]
            assert a.shape == u.shape == (n, r, r)
            assert set(np.unique(a)) <= {float(meta["a_pos"]), float(meta["a_neg"])}
            for edge in (u[:, 0, :], u[:, -1, :], u[:, :, 0], u[:, :, -1]):
                assert np.all(edge == 0.0)
            assert np.all(u[:, 1:-1, 1:-1] > 0.0)
            assert data["residual"].max() <= float(meta["tol"])
        elif eq == "navier-stokes":
            w, t = data["w"], data["t"]
            assert data["w0"].shape == (n, r, r) and w.shape == (n, len(t), r, r)
            assert t[-1] == float(meta["t_final"])
            # periodic vorticity has mean zero (to f32 rounding of the stored field)
            assert np.abs(w.mean(axis=(-1, -2))).max() < 1e-5 * np.abs(w).max()
        elif eq == "burgers":
            assert data["u0"].shape == data["u"].shape == (n, r)
            # viscous Burgers: max|u(T)| <= max|u0| (maximum principle)
            assert np.all(np.abs(data["u"]).max(axis=1) <= np.abs(data["u0"]).max(axis=1) + 1e-6)
        else:
            raise AssertionError(f"unknown equation {eq}")
    print("all files opened and checked")


if __name__ == "__main__":
    main(sys.argv[1:])
