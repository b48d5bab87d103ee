#!/usr/bin/env bash
# The paper's 8-way precision ablation (forward FFT / contraction / inverse FFT each fp32 "F" or
# fp16 "H", tanh stabilizer everywhere) plus fp8 (E5M2, E4M3) spectral blocks, on the small Darcy
# config, EPOCHS epochs each; writes runs/ablation/NAME/ and a markdown table on stdout.
# Usage: scripts/fno_ablation.sh [EPOCHS] (needs data/darcy128.safetensors, see configs/).
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-4}
BIN=${MPNO_BIN:-target/release/mpno}
[ -x "$BIN" ] || cargo build --release
declare -A FMT=([F]=fp32 [H]=fp16)
runs=()
for code in FFF FFH FHF FHH HFF HFH HHF HHH E5 E4; do
  case $code in
    E5) f=e5m2; c=e5m2; i=e5m2 ;;
    E4) f=e4m3; c=e4m3; i=e4m3 ;;
    *) f=${FMT[${code:0:1}]}; c=${FMT[${code:1:1}]}; i=${FMT[${code:2:1}]} ;;
  esac
  out=runs/ablation/$code
  rm -rf "$out"
  cfg=$(mktemp --suffix=.toml)
  sed -e "s#^out_dir = .*#out_dir = \"$out\"#" -e "s/^epochs = .*/epochs = $EPOCHS/" \
      -e "s/^test_resolutions = .*/test_resolutions = []/" configs/darcy_small_full.toml > "$cfg"
  printf '\n[precision]\nfwd_fft = "%s"\ncontraction = "%s"\ninv_fft = "%s"\nstabilizer = "tanh"\non_overflow = "skip"\n' "$f" "$c" "$i" >> "$cfg"
  start=$(date +%s.%N)
  "$BIN" train --config "$cfg" > "$out.log" 2>&1 || true
  end=$(date +%s.%N)
  echo "$code $f/$c/$i $(echo "$end - $start" | bc)" >> runs/ablation/times.txt
  rm -f "$cfg"
  runs+=("$code")
done
python3 - "$EPOCHS" <<'PY'
import csv, sys
epochs = sys.argv[1]
times = {l.split()[0]: (l.split()[1], float(l.split()[2])) for l in open("runs/ablation/times.txt")}
print(f"| fwd FFT / contraction / iFFT | code | test rel. L2 @32 after {epochs} epochs | train loss | s/epoch | samples/s | peak MB | skipped steps |")
print("|---|---|---|---|---|---|---|---|")
for code, (pol, secs) in times.items():
    try:
        rows = list(csv.DictReader(open(f"runs/ablation/{code}/metrics.csv")))
    except FileNotFoundError:
        print(f"| {pol} | {code} | run failed (see runs/ablation/{code}.log) | | | | | |")
        continue
    last = rows[-1]
    sps = sum(float(r["samples_per_s"]) for r in rows) / len(rows)
    spe = sum(float(r["seconds"]) for r in rows) / len(rows)
    skipped = sum(int(r["skipped_steps"]) for r in rows)
    print(f"| {pol} | {code} | {float(last['test_l2_r32']):.4f} | {float(last['train_loss']):.4f} | {spe:.1f} | {sps:.1f} | {int(last['peak_memory_bytes'])/1e6:.1f} | {skipped} |")
PY
