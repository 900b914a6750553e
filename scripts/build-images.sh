#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the local base images localhost/sendmail-shim-test/debian:SUITE with debootstrap and
# `podman import`, only for the suites that are missing. No registry is needed. A SUITE-arm64 name builds
# the emulated arm64 host (docs/arm64.md) with `debootstrap --arch arm64`; it needs qemu-aarch64 in
# binfmt_misc (scripts/binfmt-arm64.sh) and is skipped, saying why, without it.
# Usage: scripts/build-images.sh [SUITE[-arm64]...]   (default: bullseye bookworm trixie bookworm-arm64)
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

tags=("$@")
[ ${#tags[@]} -gt 0 ] || tags=(bullseye bookworm trixie bookworm-arm64)

for tag in "${tags[@]}"; do
  suite=${tag%-arm64}
  arch_args=()
  if [ "$suite" != "$tag" ]; then
    if ! why=$("$(dirname "$0")/binfmt-arm64.sh" check); then
      echo "image $repo:$tag skipped: $why" >&2
      continue
    fi
    arch_args=(--arch arm64)
  fi
  have=$(podman image inspect --format '{{index .Labels "sendmail-shim-test.revision"}}' "$repo:$tag" 2>/dev/null || true)
  if [ "$have" = "$revision" ]; then
    echo "image $repo:$tag (revision $revision) exists, kept"
    continue
  fi
  start=$SECONDS
  root=$(mktemp -d "/var/tmp/sendmail-shim-rootfs-$tag.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "building $repo:$tag with debootstrap from ${mirror:-its default mirror}"
  # debootstrap writes the sources.list for the mirror it used.
  debootstrap --variant=minbase "${arch_args[@]}" --include="$packages" "$suite" "$root" ${mirror:+"$mirror"} \
    >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    echo "debootstrap of $tag failed; full log in $root.log" >&2
    exit 1
  }
  # A container image needs no machine-id (systemd makes one on boot), no apt lists or caches (they
  # go stale, as in Debian's own container images) and no console gettys.
  : >"$root/etc/machine-id"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  ln -sf /dev/null "$root/etc/systemd/system/getty@.service"
  ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"
  # Without --arch, podman labels the image with the host's architecture whatever its binaries are.
  tar -C "$root" -c . | podman import "${arch_args[@]}" \
    --change 'CMD ["/sbin/init"]' --change 'ENV container=podman' --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL sendmail-shim-test.revision=$revision" \
    - "$repo:$tag" >/dev/null
  rm -rf "$root" "$root.log"
  trap - EXIT
  echo "built $repo:$tag in $((SECONDS - start)) s"
done
