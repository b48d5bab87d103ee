#!/usr/bin/env bash
# The per-point, per-step CPU cost of each `mpno datagen` solver, the constants behind
# `seconds_per_point_step` (src/pde/datagen.rs) and its refusal of jobs over about an hour of one
# core per sample. One sample each, on one thread, timed by /usr/bin/time (user seconds);
# writes a markdown table on stdout (commit it as bench/results/datagen_cost_cpu_DATE.md).
# Usage: scripts/datagen_cost.sh (about a minute on the 2-core development machine).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MPNO_BIN:-target/release/mpno}
[ -x "$BIN" ] || cargo build --release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RAYON_NUM_THREADS=1

# name | points per sample | datagen arguments | what counts as a step
jobs=(
  "burgers|262144|burgers --n 1 --res 262144 --t-final 1 --seed 0|ETDRK4 steps"
  "navier-stokes|16384|navier-stokes --n 1 --res 128 --t-final 5 --snapshots 5 --seed 0|steps"
  "darcy|1048576|darcy --n 1 --res 1024 --seed 0|PCG iterations"
)
echo "# \`mpno datagen\`: CPU seconds per grid point and step"
echo
echo "- Commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes)'); date: $(date -u +%Y-%m-%dT%H:%MZ)."
echo "- Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "- One sample each, RAYON_NUM_THREADS=1, user seconds from /usr/bin/time; steps from the line \`mpno datagen\` prints."
echo
echo "| solver | command | points | steps | user s | wall s | s per point-step |"
echo "|---|---|---|---|---|---|---|"
for j in "${jobs[@]}"; do
  IFS='|' read -r name points args what <<< "$j"
  # shellcheck disable=SC2086
  /usr/bin/time -f '%U %e' -o "$tmp/time" "$BIN" datagen $args --out "$tmp/d.safetensors" > "$tmp/out" 2> "$tmp/err"
  line=$(head -1 "$tmp/out")
  case $name in
    burgers) steps=$(sed -E 's/.*ETDRK4 steps max ([0-9]+).*/\1/' <<< "$line") ;;
    navier-stokes) steps=$(sed -E 's/.*steps per trajectory max ([0-9]+).*/\1/' <<< "$line") ;;
    darcy) steps=$(sed -E 's/.*PCG iterations mean ([0-9.]+),.*/\1/' <<< "$line") ;;
  esac
  read -r user wall < "$tmp/time"
  cost=$(python3 -c "print(f'{$user / ($points * $steps):.2e}')")
  echo "| $name | \`mpno datagen $args\` | $points | $steps $what | $user | $wall | $cost |"
done
