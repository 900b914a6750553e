#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The emulated arm64 host's kernel side: qemu-aarch64 registered in binfmt_misc with flags OCF, so that a
# setuid-root arm64 binary runs with euid 0 (C, credentials; needs O) and the interpreter works inside
# containers (F, fix-binary). Debian registers it with flags PF, under which setuid is ignored.
# This is host-wide kernel state, shared by every process and container on the machine.
# Usage: scripts/binfmt-arm64.sh register   (mounts binfmt_misc if needed; idempotent)
#        scripts/binfmt-arm64.sh restore    (puts back Debian's registration, as `make clean` does)
#        scripts/binfmt-arm64.sh check      (exit 0 when the OCF registration is in place; else says why and
#                                           exits 77, "skip", or 1 where SENDMAIL_SHIM_REQUIRE_ARM64=1, as
#                                           .ci/run sets it so that CI never skips the arm64 tests)
set -euo pipefail

binfmt=/proc/sys/fs/binfmt_misc
entry=$binfmt/qemu-aarch64
interpreter=/usr/bin/qemu-aarch64-static
# Debian's own description of the format: its magic and mask are the ones to register.
debian_format=/usr/share/binfmts/qemu-aarch64

field() { sed -n "s/^$1 //p" "$debian_format"; }

registered_ocf() {
  [ -r "$entry" ] && grep -qx 'enabled' "$entry" && grep -qx "interpreter $interpreter" "$entry" &&
    grep -qx 'flags: OCF' "$entry"
}

unusable_because() {
  if [ ! -x "$interpreter" ]; then
    echo "$interpreter is missing (qemu-user-static)"
  elif [ ! -w "$binfmt/register" ]; then
    echo "binfmt_misc is not mounted writable at $binfmt"
  elif ! registered_ocf; then
    echo "qemu-aarch64 is not registered in binfmt_misc with flags OCF"
  fi
}

check() {
  local why
  why=$(unusable_because)
  [ -n "$why" ] || return 0
  if [ "${SENDMAIL_SHIM_REQUIRE_ARM64:-}" = 1 ]; then
    echo "the emulated arm64 host is unusable: $why; SENDMAIL_SHIM_REQUIRE_ARM64=1 makes that a failure"
    return 1
  fi
  echo "the emulated arm64 host is unusable: $why (scripts/binfmt-arm64.sh register, as root, sets it up)"
  return 77
}

case ${1:-} in
register)
  if [ ! -e "$binfmt/register" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || {
      echo "binfmt-arm64: cannot mount binfmt_misc at $binfmt; the arm64 tests will skip" >&2
      exit 0
    }
  fi
  registered_ocf && exit 0
  [ ! -e "$entry" ] || echo -1 >"$entry"
  echo ":qemu-aarch64:M:$(field offset):$(field magic):$(field mask):$interpreter:OCF" >"$binfmt/register"
  echo "binfmt-arm64: registered qemu-aarch64 with flags OCF in binfmt_misc; this is host-wide kernel" \
    "state (every container on this machine sees it); \`make clean\` restores Debian's registration"
  ;;
restore)
  registered_ocf || exit 0
  echo -1 >"$entry"
  update-binfmts --enable qemu-aarch64
  echo "binfmt-arm64: restored Debian's qemu-aarch64 registration ($(sed -n 's/^flags: //p' "$entry"))"
  ;;
check) check ;;
*)
  echo "usage: $0 register|restore|check" >&2
  exit 2
  ;;
esac
