#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Test tooling: copies a release directory made by scripts/release.sh and spoils it the way an attacker or
# a broken mirror would, for the listener scenario to prove that apt refuses it.
#   spoil-release.sh other-key SRC DST          the repository signed by a key the hosts do not trust
#   spoil-release.sh changed-inrelease SRC DST  InRelease edited after signing
#   spoil-release.sh replaced-deb SRC DST VER   the pool's .debs of version VER replaced by other bytes
set -euo pipefail
kind=$1 src=$2 dst=$3
rm -rf "$dst"
mkdir -p "$(dirname "$dst")"
cp -a "$src" "$dst"
dist=$dst/apt/dists/$(python3 "$(dirname "$0")/../../scripts/install-tree.py" value release_suite)
case "$kind" in
other-key)
  GNUPGHOME=$(mktemp -d)
  export GNUPGHOME
  trap 'rm -rf "$GNUPGHOME"' EXIT
  gpg --batch --quiet --passphrase '' --quick-gen-key "someone else" ed25519 sign 1d
  gpg --batch --yes --quiet --clearsign --output "$dist/InRelease" "$dist/Release"
  gpg --batch --yes --quiet --armor --detach-sign --output "$dist/Release.gpg" "$dist/Release"
  ;;
changed-inrelease)
  # One changed byte in the signed text: the signature no longer matches.
  sed -i 's/^Description: \(.*\)$/Description: \1 (changed)/' "$dist/InRelease"
  grep -q '(changed)' "$dist/InRelease"
  ;;
replaced-deb)
  found=0
  for deb in "$dst"/apt/pool/*/*.deb; do
    if [ "$(dpkg-deb -f "$deb" Version)" = "$4" ]; then
      # Same name and size, one byte changed: only the index's hashes tell.
      python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 1; open(sys.argv[1], "wb").write(b)' "$deb"
      found=1
    fi
  done
  [ "$found" -eq 1 ] || { echo "spoil-release: no .deb of version $4 in the pool" >&2; exit 1; }
  ;;
*)
  echo "usage: $0 other-key|changed-inrelease|replaced-deb SRC DST [VERSION]" >&2
  exit 64
  ;;
esac
