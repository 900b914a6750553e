#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what the tests and the demo need on a Debian-family host, as root: Debian packages
# (only the missing ones) and the pinned Python tools in .venv (only when requirements changed).
set -euo pipefail
cd "$(dirname "$0")/.."

# podman/runc/debootstrap: the container harness; packer: image tests; gcc/libc6-dev: the launcher;
# logrotate: rotation fault tests on the host; python3-venv: the tool venv; lintian: checks the package;
# apt-utils (apt-ftparchive) and gnupg: `make release`.
apt_packages=(podman runc debootstrap uidmap packer gcc libc6-dev make logrotate lintian apt-utils gnupg
  python3-venv python3-yaml openssh-client sshpass util-linux iproute2 procps)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "bootstrap: need root to install: ${missing[*]}" >&2; exit 1; }
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: creating .venv from requirements-dev.txt"
  /usr/bin/python3 -m venv .venv
  # This machine's pip.conf names local wheel folders that may be absent; pip warns once per package.
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt 2>/tmp/sendmail-shim-pip.log ||
    { grep -v '^WARNING: Location' /tmp/sendmail-shim-pip.log >&2; exit 1; }
  .venv/bin/ansible --version >/dev/null
  echo "$want" >"$stamp"
fi

# The collection's oldest supported ansible-core, for tests/collection only (the tools stay on .venv's).
old_core=.venv-ansible-2.18
want=$(sha256sum requirements-ansible-2.18.txt | cut -d' ' -f1)
stamp=$old_core/.requirements.sha256
if [ ! -x "$old_core/bin/ansible-playbook" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: creating $old_core from requirements-ansible-2.18.txt"
  /usr/bin/python3 -m venv "$old_core"
  "$old_core/bin/pip" install -q --disable-pip-version-check -r requirements-ansible-2.18.txt \
    2>/tmp/sendmail-shim-pip-2.18.log ||
    { grep -v '^WARNING: Location' /tmp/sendmail-shim-pip-2.18.log >&2; exit 1; }
  echo "$want" >"$stamp"
fi

# `ansible-test sanity --venv` (tests/collection) downloads a pip bootstrap script from a host that is not
# reachable here; it takes a cached copy first. The stand-in bootstraps pip from Python's own ensurepip.
pip_version=$(.venv/bin/python -c 'import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="3"))["pip"])')
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if ! cmp -s scripts/ansible-test-get-pip.py "$get_pip"; then
  mkdir -p "$(dirname "$get_pip")"
  cp scripts/ansible-test-get-pip.py "$get_pip"
fi

# The emulated arm64 host (docs/arm64.md): qemu-aarch64 in binfmt_misc with flags OCF. Host-wide kernel
# state, which scripts/binfmt-arm64.sh says when it changes it; `make clean` restores Debian's registration.
emulation_missing=()
for pkg in qemu-user-static binfmt-support; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || emulation_missing+=("$pkg")
done
if [ ${#emulation_missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "bootstrap: need root to install: ${emulation_missing[*]}" >&2; exit 1; }
  echo "bootstrap: installing ${emulation_missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${emulation_missing[@]}" >/dev/null
fi
[ "$(id -u)" -ne 0 ] || scripts/binfmt-arm64.sh register
