#!/usr/bin/env bash
# Create .venv with the full ptsnn stack, reproducibly, on Python 3.11 (or 3.10).
#
# Why a script and not just `pip install -e .`: lava-nc 0.10 and lava-dl 0.6 declare Python <3.11 and pin
# torch 2.3 + torchvision; norse pulls torchvision and numpy 2. Installed with their pins they would replace
# the CPU torch with gigabytes of CUDA wheels. So: torch first (the local CPU build), then ptsnn with every
# real runtime dependency (constrained by requirements/lock.txt), then lava-nc, lava-dl, norse and tonic
# with --no-deps (tonic's metadata pulls librosa/numba for audio transforms ptsnn does not use).
# ptsnn.compat fixes lava's two Python-3.11 import problems at run time (docs/install.md).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3.10 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(0 if (3,10)<=sys.version_info[:2]<=(3,11) else 1)'; then PY=$c; break; fi
  done
fi
[ -n "$PY" ] || { echo "setup: need Python 3.10 or 3.11 (lava-nc 0.10 does not run on 3.12+)" >&2; exit 1; }

STAMP="$VENV/.ptsnn-stamp"
WANT=$(cat pyproject.toml requirements/lock.txt scripts/setup_env.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$VENV/bin/python" -c 'import ptsnn' 2>/dev/null; then
  exit 0
fi

echo "setup: creating $VENV with $($PY --version)"
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# pip warns about every package missing from a local extra index (machine pip config): noise, filtered.
pip_install() { "${PIP[@]}" install -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
FIND=()
# The machine image ships the CPU build of torch 2.13.0 as a local wheel.
[ -d /opt/wheels ] && FIND=(--find-links /opt/wheels)
pip_install --upgrade "pip>=24" "setuptools>=68" wheel
pip_install "${FIND[@]}" -c requirements/lock.txt "torch==2.13.0"
pip_install "${FIND[@]}" -c requirements/lock.txt -e ".[dev]"
pip_install "${FIND[@]}" -c requirements/lock.txt --no-deps --ignore-requires-python \
  lava-nc==0.10.0 lava-dl==0.6.0 norse==1.1.0 tonic==1.7.0 setuptools_scm
# Check that nothing replaced the CPU torch or brought numpy 2.
"$VENV/bin/python" - <<'PY'
import numpy, torch, sys
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}: lava needs numpy<2"
assert torch.__version__.startswith("2.13.0"), f"torch {torch.__version__}: expected the 2.13.0 CPU build"
import ptsnn.compat; ptsnn.compat.apply()
import lava.magma.core.run_configs, lava.lib.dl.netx, norse.torch, tonic.transforms, aedat  # noqa: F401
print(f"setup: ok (python {sys.version.split()[0]}, torch {torch.__version__}, numpy {numpy.__version__})")
PY
echo "$WANT" > "$STAMP"
