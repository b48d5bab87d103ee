#!/usr/bin/env bash
# The time `mpno errors` takes per complex multiply-add of the naive DFT, in f64 with every
# stage stored in fp16 (model storage) and fully emulated in fp16 (model arithmetic): the costs
# behind cli::transform_work, which refuses sweeps above cli::SWEEP_WORK_LIMIT before any work.
# Writes a markdown table on stdout (commit it as bench/results/sweep_cost_cpu_DATE.md).
# Usage: scripts/sweep_cost.sh (about two minutes on the 2-core development machine).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MPNO_BIN:-target/release/mpno}
[ -x "$BIN" ] || cargo build --release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# \`mpno errors --algorithm naive\`: seconds per complex multiply-add"
echo
echo "- Commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes)'); date: $(date -u +%Y-%m-%dT%H:%MZ)."
echo "- Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "- One format (fp16), one model, one size per run; user seconds from /usr/bin/time over n^2 (the f64 reference FFT and the rest are a small part)."
echo
echo "| model | n | user s | wall s | ns per multiply-add |"
echo "|---|---|---|---|---|"
for run in "storage 4096" "storage 16384" "storage 65536" "storage 131072" "arithmetic 4096" "arithmetic 16384"; do
  read -r model n <<< "$run"
  /usr/bin/time -f '%U %e' -o "$tmp/time" "$BIN" errors --function x --sizes "$n" --formats fp16 \
    --models "$model" --algorithm naive --modes 3 > /dev/null 2> "$tmp/err"
  read -r user wall < "$tmp/time"
  ns=$(python3 -c "print(f'{$user * 1e9 / ($n * $n):.2f}')")
  echo "| $model | $n | $user | $wall | $ns |"
done
