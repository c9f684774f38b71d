#!/usr/bin/env bash
# Rewrite requirements.lock from the current .venv (after changing pyproject.toml's ranges).
# The local torch build tag (+cpu) is dropped so the GPU image resolves the CUDA build of the same version.
set -euo pipefail
cd "$(dirname "$0")/.."
{
    echo "# Exact versions used by local installs (scripts/setup.sh) and the GPU image (Apptainerfile)."
    echo "# Regenerate with: scripts/lock.sh"
    .venv/bin/python -m pip freeze --exclude-editable \
        | grep -v '^-e ' | grep -viE '^(pip|setuptools|wheel)==' | sed -E 's/^(torch==[0-9.]+)\+[a-z0-9]+$/\1/'
} > requirements.lock.tmp
mv requirements.lock.tmp requirements.lock
echo "wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages)"
