#!/usr/bin/env bash
# Run the test suite from .venv. Extra arguments go to pytest (e.g. -m "slow or not slow", -k netx).
# pytest exits 5 when it collected no test: that is a broken suite or a bad selection, never a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# 2 cores: keep BLAS/torch from oversubscribing when Lava's processes run beside them
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MKL_NUM_THREADS=${MKL_NUM_THREADS:-2}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
"$VENV/bin/python" -m pytest "$@"
code=$?
if [ $code -eq 5 ]; then
  echo "run_tests: pytest collected no tests (exit 5); treating as failure" >&2
  exit 1
fi
exit $code
