#!/usr/bin/env bash
# Debian packages the full test suite uses: chromium (the HTML report test) and a Slurm + munge
# installation (the private single-node cluster test). Tests that need them skip where they are absent.
# Needs root (or sudo). EGL for headless MuJoCo comes from Mesa (libegl1, libgl1-mesa-dri).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    chromium slurmctld slurmd slurm-client munge libegl1 libgl1-mesa-dri >/dev/null
echo "system packages installed: chromium $(chromium --version 2>/dev/null | awk '{print $2}'), slurm $(dpkg-query -W -f='${Version}' slurmctld 2>/dev/null)"
