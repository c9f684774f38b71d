#!/usr/bin/env bash
# Create .venv with the exact versions of requirements.lock and install rlmu into it (editable).
# torch==2.13.0 is installed first on its own: on a CPU machine with a local CPU wheel this keeps pip
# from resolving the multi-GB CUDA build through another package's dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -r requirements.lock
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
.venv/bin/python -c "import rlmu, torch, metaworld, rliable; print('rlmu', rlmu.__version__, '| torch', torch.__version__)"
