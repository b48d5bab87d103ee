#!/usr/bin/env bash
# Runs the notebooks headless (jupyter nbconvert --execute) against the committed figures/*.csv,
# in a virtual environment with the pinned requirements. A notebook whose checks fail (mpno's
# numbers vs NumPy beyond 1e-12, a measurement above its bound) raises, and this script fails.
# Usage: bash notebooks/run.sh [--setup]    (MPNO_NOTEBOOK_VENV=DIR to put the venv elsewhere)
set -euo pipefail
cd "$(dirname "$0")"
VENV=${MPNO_NOTEBOOK_VENV:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  # Debian's python3 has venv only with the python3-venv package; virtualenv (from PyPI)
  # brings its own pip and works without it.
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    "$PY" -m pip install --quiet --user --break-system-packages virtualenv 2>/dev/null \
      || "$PY" -m pip install --quiet --user virtualenv
    "$PY" -m virtualenv --quiet "$VENV"
  fi
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
# --setup: only make the environment (CI makes it before `cargo test`, whose NumPy cross-checks
# then run with PYTHON=notebooks/.venv/bin/python instead of skipping).
if [ "${1:-}" = "--setup" ]; then
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0
for nb in theory_study fft_precision_study; do
  echo "executing notebooks/$nb.ipynb"
  "$VENV/bin/python" -m jupyter nbconvert --to notebook --execute \
    --ExecutePreprocessor.timeout=600 --output-dir "$out" "$nb.ipynb"
  # Show what the checks printed (the executed copy is discarded).
  "$VENV/bin/python" - "$out/$nb.ipynb" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["cells"]:
    for o in c.get("outputs", []):
        if o.get("name") == "stdout":
            print("  " + "".join(o["text"]).rstrip().replace("\n", "\n  "))
PY
  passed=$((passed + 1))
done
echo "notebooks: $passed passed, 0 failed"
