#!/usr/bin/env bash
# Times (1) the full 1-D sweep of the foundation issue: sizes 2^4..2^20, 7 formats, 3 models, one
# function, modes 0..8; (2) the model-I fp16 sweep in mpno and in NumPy on the same sizes/modes.
# Best of N runs each, same machine, same session. Usage: bash benches/sweep_vs_numpy.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
cargo build --release -q
BIN=target/release/mpno
tmp=$(mktemp -d)
best() { # best wall time (s) of N runs of "$@"
  local b=1e9
  for _ in $(seq "$N"); do
    local t0=$(date +%s.%N); "$@" >/dev/null 2>&1; local t1=$(date +%s.%N)
    b=$(python3 -c "print(min($b, $t1 - $t0))")
  done
  echo "$b"
}
MODES=0,1,2,3,4,5,6,7,8
full=$(best $BIN errors --function x2 --sizes 2^4..2^20 --modes $MODES \
  --formats fp64,fp32,tf32,bf16,fp16,e5m2,e4m3 --models input,storage,arithmetic --out "$tmp/full.csv")
m1=$(best $BIN errors --function x2 --sizes 2^4..2^20 --modes $MODES --formats fp16 --models input --out "$tmp/m1.csv")
np=$(python3 benches/numpy_model1.py --repeat "$N")
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "full 1-D sweep (2^4..2^20, 7 formats, 3 models, modes 0..8): best of $N = ${full} s"
echo "mpno model-I fp16 sweep (whole command, incl. discretization rows): best of $N = ${m1} s"
echo "$np"
rm -rf "$tmp"
