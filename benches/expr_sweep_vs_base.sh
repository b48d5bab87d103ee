#!/usr/bin/env bash
# Cost of certified constants and resolved quadrature for user expressions: a 1-D sweep
# (sizes 2^4..2^16, the default modes 0,3, formats and models) of several expressions, timed
# with this checkout's binary and with the binary of BASE (default ad60b44, the last commit
# before expressions got interval-certified L, M and guarded quadrature; it estimated L and M on
# a 65537-point grid). Both binaries run alternately in the same session, best and median of N
# runs each, so the ratio is measured under the same load (printed).
#
# Usage: bash benches/expr_sweep_vs_base.sh [N] [BASE]
#   builds BASE in a temporary git worktree (a few minutes) unless MPNO_BASE_BIN points at a
#   binary already built from it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-9}
BASE=${2:-ad60b44}
cargo build --release -q --bin mpno
NEW=target/release/mpno
if [ -z "${MPNO_BASE_BIN:-}" ]; then
  wt=$(mktemp -d)
  git worktree add -q --detach "$wt" "$BASE"
  (cd "$wt" && cargo build --release -q --bin mpno)
  MPNO_BASE_BIN="$wt/target/release/mpno"
fi
tmp=$(mktemp -d)
run() { # wall seconds of one run of "$@"
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)"
}
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| expression | base median (s) | new median (s) | new / base | base best | new best |"
echo "|---|---|---|---|---|---|"
for f in "exp(sin(2*pi*x))" "abs(x-0.3)" "exp(0-((x-0.3)*3000)^2)" "x*sin(40*pi*x)+tanh((x-0.5)*200)"; do
  b=(); n=()
  for _ in $(seq "$N"); do
    b+=("$(run "$MPNO_BASE_BIN" errors --function "$f" --sizes 2^4..2^16 --out "$tmp/b.csv")")
    n+=("$(run "$NEW" errors --function "$f" --sizes 2^4..2^16 --out "$tmp/n.csv")")
  done
  python3 - "$f" "${b[@]}" -- "${n[@]}" <<'EOF'
import statistics, sys
a = sys.argv[1:]
f, rest = a[0], a[1:]
i = rest.index("--")
b, n = [float(x) for x in rest[:i]], [float(x) for x in rest[i + 1:]]
mb, mn = statistics.median(b), statistics.median(n)
print(f"| `{f}` | {mb:.3f} | {mn:.3f} | {mn / mb:.2f} | {min(b):.3f} | {min(n):.3f} |")
EOF
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$tmp"
