"""The peer's side of benches/fno_vs_torch.sh: one neuraloperator 2.0.0 FNO training step on the
CPU, the same model and step as `mpno bench fno` (grid embedding, lifting MLP 3->2w->w, 4 FNO
blocks with linear skip, soft-gated channel MLP of expansion 0.5, projection w->2w->1, tanh
stabilizer, relative L2 loss, AdamW with weight decay 1e-4, random inputs and targets).

Modes: mpno's --modes m keeps 2m modes on the first axis and m on the last (rfft) axis;
neuraloperator 2.0.0's n_modes=(2m, 2m-1) keeps the same 2m x m block (it keeps n//2+1 on the last).

Prints one JSON object: ms_per_step (minimum over the timed steps), ms_median_step, cpu_percent
(process CPU time / wall time over the timed steps), peak_rss_bytes (ru_maxrss of this process),
parameters (real values: a complex weight counts twice, as mpno counts).

Usage: python fno_vs_torch.py --res 64 --batch 20 [--width 32 --modes 12 --layers 4 --steps 5]
"""
import argparse
import json
import resource
import sys
import time

import torch
from neuralop.models import FNO
from neuralop.losses import LpLoss


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--modes", type=int, default=12)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    torch.manual_seed(a.seed)
    model = FNO(
        n_modes=(2 * a.modes, 2 * a.modes - 1),
        in_channels=1,
        out_channels=1,
        hidden_channels=a.width,
        n_layers=a.layers,
        lifting_channel_ratio=2,
        projection_channel_ratio=2,
        stabilizer="tanh",
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = LpLoss(d=2, p=2)
    g = torch.Generator().manual_seed(a.seed)
    x = torch.randn(a.batch, 1, a.res, a.res, generator=g)
    y = torch.randn(a.batch, 1, a.res, a.res, generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    step()  # warm-up, as mpno bench fno
    walls = []
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        walls.append(time.perf_counter() - t)
    cpu = (time.process_time() - c0) / (time.perf_counter() - w0)
    walls.sort()
    n_params = sum(q.numel() * (2 if q.is_complex() else 1) for q in model.parameters())
    json.dump(
        {
            "peer": f"neuraloperator 2.0.0, torch {torch.__version__}",
            "threads": torch.get_num_threads(),
            "ms_per_step": walls[0] * 1e3,
            "ms_median_step": walls[len(walls) // 2] * 1e3,
            "cpu_percent": 100 * cpu,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "parameters": n_params,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
