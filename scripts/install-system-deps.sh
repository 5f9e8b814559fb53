#!/usr/bin/env bash
# Install the Debian packages the test suite needs (a real Slurm, munge, a headless Chromium
# and Noto fonts for Indic and CJK scripts) when they are missing and we are root.
# Not root: say what is missing and go on (the tests that need them will fail and say so).
set -euo pipefail
PACKAGES=(slurmctld slurmd slurm-client munge chromium-headless-shell fonts-noto-core fonts-noto-cjk)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "warning: missing system packages (install them as root): ${missing[*]}" >&2
    exit 0
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
