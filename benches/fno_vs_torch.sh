#!/usr/bin/env bash
# mpno's CPU training step beside the reference library's, measured in one run on one machine:
# `mpno bench fno` and benches/fno_vs_torch.py (neuraloperator 2.0.0 on torch 2.11.0, pinned, in
# a venv this script makes) on the same model, step and sizes, alternating, ROUNDS times each.
#
#   benches/fno_vs_torch.sh [OUT.md]      (default bench/results/fno_vs_torch_cpu_<date>.md)
#   VENV=dir ROUNDS=3 benches/fno_vs_torch.sh
#
# Each run reports the fastest of its timed steps (after one warm-up step), the median step,
# the cores kept busy over the timed steps (process CPU time / wall time) and the process's
# peak resident memory (/usr/bin/time for mpno, ru_maxrss for Python). The table takes the
# median over the rounds of each; ratios are mpno / torch (below 1: mpno faster or leaner).
# Both use every core by default (rayon and torch's intra-op threads); the load average before
# and after is written beside the table: the machines are shared, compare only within a run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-target/venv-torch}
ROUNDS=${ROUNDS:-3}
OUT=${1:-bench/results/fno_vs_torch_cpu_$(date -u +%F).md}

if ! "$VENV/bin/python" -c "import torch, neuralop" 2>/dev/null; then
    echo "making $VENV (torch 2.11.0, neuraloperator 2.0.0; a few GB of wheels)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch==2.11.0 neuraloperator==2.0.0
fi
cargo build --release --quiet
MPNO=target/release/mpno
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# One JSON line per run: record TOOL RESULT.json [RSS_KB_FILE] (the peak RSS measured outside).
record() {
    python3 - "$1" "$name" "$2" "${3:-}" >>"$TMP/runs.jsonl" <<'PY'
import json, sys
tool, config, result, rss = sys.argv[1:]
d = json.load(open(result))
if rss:
    d["peak_rss_bytes"] = int(open(rss).read().split()[-1]) * 1024
print(json.dumps({"tool": tool, "config": config, "run": d}))
PY
}

# name res batch steps: the issue's two sizes (width 32, 12 modes, 4 layers, fp32, tanh).
CONFIGS=("64x64 64 20 5" "32x32 32 10 10")
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
    for c in "${CONFIGS[@]}"; do
        read -r name res batch steps <<<"$c"
        echo "round $r/$ROUNDS $name" >&2
        /usr/bin/time -f %M -o "$TMP/rss" "$MPNO" bench fno --res "$res" --batch "$batch" \
            --steps "$steps" >"$TMP/m.json"
        record mpno "$TMP/m.json" "$TMP/rss"
        "$VENV/bin/python" benches/fno_vs_torch.py --res "$res" --batch "$batch" \
            --steps "$steps" >"$TMP/t.json"
        record torch "$TMP/t.json"
        # mpno's emulated fp16 spectral block (exact rounding on the CPU) beside its own fp32.
        "$MPNO" bench fno --res "$res" --batch "$batch" --steps "$steps" \
            --policy fp16/fp16/fp16/fp32 >"$TMP/h.json"
        record "mpno fp16 block" "$TMP/h.json"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$TMP/runs.jsonl" "$OUT" "$LOAD_BEFORE" "$LOAD_AFTER" "$ROUNDS" <<'EOF'
import json, statistics, subprocess, sys, datetime, platform
runs_file, out, load0, load1, rounds = sys.argv[1:]
runs = [json.loads(l) for l in open(runs_file)]
peer = next(r["run"]["peer"] for r in runs if r["tool"] == "torch")
def med(cfg, tool, key):
    return statistics.median(r["run"][key] for r in runs if r["config"] == cfg and r["tool"] == tool)
def rng(cfg, tool, key):
    v = [r["run"][key] for r in runs if r["config"] == cfg and r["tool"] == tool]
    return f"{min(v):.1f}-{max(v):.1f}"
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
ncpu = sum(1 for l in open("/proc/cpuinfo") if l.startswith("processor"))
lines = [
    "# CPU training step: mpno beside neuraloperator (benches/fno_vs_torch.sh)",
    "",
    f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {ncpu} cores ({cpu}), "
    f"mpno commit {commit}{' with uncommitted changes' if dirty else ''}, peer {peer}; "
    f"load average {load0} before, {load1} after. {rounds} alternating rounds per tool; each "
    "run times its steps after one warm-up step. Same model (width 32, 12 modes, 4 layers, "
    "lifting/projection 64, soft-gated channel MLP 0.5, tanh stabilizer), relative L2 loss, AdamW, "
    "fp32, random inputs.",
    "",
    "| grid, batch | mpno ms/step | torch ms/step | mpno / torch | mpno median step | torch median step | mpno samples/s | torch samples/s | mpno CPU | torch CPU | mpno peak RSS MB | torch peak RSS MB | RSS mpno / torch |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]
for cfg, batch in [("64x64", 20), ("32x32", 10)]:
    m, t = med(cfg, "mpno", "ms_per_step"), med(cfg, "torch", "ms_per_step")
    mm, tm = med(cfg, "mpno", "ms_median_step"), med(cfg, "torch", "ms_median_step")
    mc, tc = med(cfg, "mpno", "cpu_percent"), med(cfg, "torch", "cpu_percent")
    mr, tr = med(cfg, "mpno", "peak_rss_bytes") / 2**20, med(cfg, "torch", "peak_rss_bytes") / 2**20
    lines.append(
        f"| {cfg}, {batch} | {m:.1f} ({rng(cfg, 'mpno', 'ms_per_step')}) | {t:.1f} ({rng(cfg, 'torch', 'ms_per_step')}) "
        f"| {m / t:.2f} | {mm:.1f} | {tm:.1f} | {1e3 * batch / m:.1f} | {1e3 * batch / t:.1f} | {mc:.0f}% | {tc:.0f}% "
        f"| {mr:.0f} | {tr:.0f} | {mr / tr:.2f} |")
lines += ["", "mpno's emulated fp16 spectral block (fp16/fp16/fp16/fp32, every FFT, contraction and "
          "inverse FFT rounded exactly as fp16 arithmetic on the CPU) beside its own fp32 step:", "",
          "| grid, batch | fp16 block ms/step | fp32 ms/step | fp16 block / fp32 |", "|---|---|---|---|"]
for cfg, batch in [("64x64", 20), ("32x32", 10)]:
    h, m = med(cfg, "mpno fp16 block", "ms_per_step"), med(cfg, "mpno", "ms_per_step")
    lines.append(f"| {cfg}, {batch} | {h:.1f} ({rng(cfg, 'mpno fp16 block', 'ms_per_step')}) | {m:.1f} | {h / m:.2f} |")
lines += ["", "ms/step: median over the rounds of each run's fastest step (range in brackets). "
          "CPU: process CPU time / wall time over the timed steps (200% = both of 2 cores busy).", ""]
lines += ["Raw runs (JSON lines):", "", "```"] + [json.dumps(r) for r in runs] + ["```", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines[:8]))
print(f"wrote {out}")
EOF
