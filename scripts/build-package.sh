#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian package in a Debian 11 container (the oldest supported suite: its glibc runs on 12 and
# 13), from a clean copy of the package's sources, then checks it with the host's lintian.
#   scripts/build-package.sh                        dist/sendmail-shim_<version>_<arch>.deb; nothing is
#                                                   done when dist/ holds a build of the same sources
#   scripts/build-package.sh --version V --out DIR  the same sources as version V (tests: an older release)
# The version is __version__ of files/sendmail_shim/__init__.py; debian/changelog is generated from it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/containers/containers.conf}"

base=localhost/sendmail-shim-test/debian:bullseye
builder=localhost/sendmail-shim-build:bullseye
# What the package is built from; nothing else in the tree can change it.
sources=(files debian scripts/install-tree.py scripts/build-package.sh)
init=files/sendmail_shim/__init__.py

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$init")
out=dist
while [ $# -gt 0 ]; do
  case "$1" in
  --version) version=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  *) echo "usage: $0 [--version VERSION] [--out DIR]" >&2; exit 64 ;;
  esac
done
[ -n "$version" ] || { echo "build-package: no __version__ in $init" >&2; exit 1; }

mkdir -p .cache "$out"
# One build at a time: engineers and targets share dist/ and the builder image.
exec 9>.cache/build-package.lock
flock 9

# Tracked and untracked-but-not-ignored files, less those deleted in the working tree.
files=()
while IFS= read -r -d '' f; do
  [ -e "$f" ] && files+=("$f")
done < <(git ls-files -z --cached --others --exclude-standard -- "${sources[@]}")
digest=$( (echo "$version"; sha256sum -- "${files[@]}") | sha256sum | cut -c1-16)
stamp="$out/.sendmail-shim.stamp"
deb_glob="$out/sendmail-shim_${version}_*.deb"
# shellcheck disable=SC2086 # the glob is meant to expand
if [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ] && compgen -G "$deb_glob" >/dev/null; then
  echo "build-package: $(echo $deb_glob) is current"
  exit 0
fi

# The builder image: the base plus the build dependencies, rebuilt when either changes.
revision=$( (podman image inspect --format '{{.Id}}' "$base"; cat debian/control) | sha256sum | cut -c1-16)
if [ "$(podman image inspect --format '{{index .Labels "sendmail-shim.build-revision"}}' "$builder" 2>/dev/null)" != "$revision" ]; then
  echo "build-package: preparing $builder (revision $revision)"
  name="sst14-builder-$$"
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman run --name "$name" -v "$PWD/debian/control:/deps/debian/control:ro" "$base" sh -c '
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get build-dep -y -qq --no-install-recommends /deps >/dev/null &&
    apt-get clean && rm -rf /var/lib/apt/lists/*' ||
    { podman rm -f "$name" >/dev/null; echo "build-package: cannot install the build dependencies" >&2; exit 1; }
  podman commit -q --change "LABEL sendmail-shim.build-revision=$revision" "$name" "$builder" >/dev/null
  podman rm "$name" >/dev/null
fi

work=$(mktemp -d "$PWD/.cache/build-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
tar -c --null -T <(printf '%s\0' "${files[@]}") | tar -x -C "$work/src"
sed -i "s/^__version__ = \".*\"$/__version__ = \"$version\"/" "$work/src/$init"
maintainer=$(sed -n 's/^Maintainer: //p' debian/control)
cat >"$work/src/debian/changelog" <<CHANGELOG
sendmail-shim ($version) unstable; urgency=medium

  * Release $version (version from $init).

 -- $maintainer  $(git log -1 --format=%cD)
CHANGELOG

podman run --rm --name "sst14-build-$$" -v "$work:/build" -w /build/src "$builder" \
  dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log" >&2; echo "build-package: dpkg-buildpackage failed" >&2; exit 1; }

built=$(echo "$work"/sendmail-shim_"$version"_*.deb)
# A package with an error-level lintian tag never reaches $out; the output is kept for the record.
lintian --display-info --fail-on error "$built" | tee .cache/lintian.txt
rm -f "$out"/sendmail-shim_*.deb "$stamp"
cp "$built" "$out"/
echo "$digest" >"$stamp"
echo "build-package: built $out/${built##*/}"
