#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the local base images localhost/sendmail-shim-test/debian:SUITE with debootstrap and
# `podman import`, only for the suites that are missing. No registry is needed.
# Usage: scripts/build-images.sh [SUITE...]   (default: bullseye bookworm trixie)
set -euo pipefail

: "${CONTAINERS_CONF:=$(cd "$(dirname "$0")/.." && pwd)/containers/containers.conf}"
export CONTAINERS_CONF
# The mirror comes from the environment; without one, debootstrap uses its own default.
mirror=${SENDMAIL_SHIM_MIRROR:-}
repo=localhost/sendmail-shim-test/debian
# A stock minimal host (debootstrap minbase) plus only what the tests need from it: systemd as init,
# cron and sudo as mail callers, python3 for Ansible. Nothing the role could silently rely on: no
# python3-apt, dbus, procps, iproute2 or ca-certificates (Debian's own minimal images lack them too).
# Bump when what goes into an image changes, so that cached images are rebuilt.
revision=3
packages=systemd,systemd-sysv,python3,sudo,cron

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bullseye bookworm trixie)

for suite in "${suites[@]}"; do
  have=$(podman image inspect --format '{{index .Labels "sendmail-shim-test.revision"}}' "$repo:$suite" 2>/dev/null || true)
  if [ "$have" = "$revision" ]; then
    echo "image $repo:$suite (revision $revision) exists, kept"
    continue
  fi
  start=$SECONDS
  root=$(mktemp -d "/var/tmp/sendmail-shim-rootfs-$suite.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "building $repo:$suite with debootstrap from ${mirror:-its default mirror}"
  # debootstrap writes the sources.list for the mirror it used.
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" ${mirror:+"$mirror"} >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    echo "debootstrap of $suite failed; full log in $root.log" >&2
    exit 1
  }
  # A container image needs no machine-id (systemd makes one on boot), no apt lists or caches (they
  # go stale, as in Debian's own container images) and no console gettys.
  : >"$root/etc/machine-id"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  ln -sf /dev/null "$root/etc/systemd/system/getty@.service"
  ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"
  tar -C "$root" -c . | podman import \
    --change 'CMD ["/sbin/init"]' --change 'ENV container=podman' --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL sendmail-shim-test.revision=$revision" \
    - "$repo:$suite" >/dev/null
  rm -rf "$root" "$root.log"
  trap - EXIT
  echo "built $repo:$suite in $((SECONDS - start)) s"
done
