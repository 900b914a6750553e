#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian package in a Debian 11 container (the oldest supported suite: its glibc runs on 12 and
# 13), from a clean copy of the package's sources, for the host's architecture or, cross-compiled in the
# same container, another one; then checks it with Debian 12's lintian (the host's when it has that one or
# later, else one in a bookworm container). Needs podman, git and python3 only; the base images come from
# scripts/build-images.sh (debootstrap, as root, once).
#   scripts/build-package.sh [--arch ARCH] [--release]
#       dist/sendmail-shim_<version>_<arch>.deb, the version from scripts/version.py: a development version
#       of the commit by default, __version__ itself with --release (from a committed tree). Nothing is done
#       when dist/ holds a build of the same sources for ARCH; the other architectures' builds stay.
#   scripts/build-package.sh --version V --out DIR    the same sources as version V (tests: an older release)
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/containers/containers.conf}"

base_suite=bullseye
lintian_suite=bookworm
images=localhost/sendmail-shim-test/debian
builder=localhost/sendmail-shim-build:bullseye-cross
lintian_image=localhost/sendmail-shim-build:bookworm-lintian
# The architectures the builder makes packages for: its own natively, the others cross-compiled.
arches=(amd64 arm64)
# Debian 12's lintian; Debian 11's (2.104) misreads today's overrides.
lintian_min=2.116
# What the package is built from; nothing else in the tree can change it.
sources=(files debian scripts/install-tree.py scripts/build-package.sh)
init=files/sendmail_shim/__init__.py

host_arch=$(dpkg --print-architecture 2>/dev/null ||
  case $(uname -m) in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) uname -m ;; esac)
arch=$host_arch
version=
release=
out=dist
usage="usage: $0 [--arch ARCH] [--release] [--version VERSION --out DIR]"
while [ $# -gt 0 ]; do
  case "$1" in
  --arch) arch=$2; shift 2 ;;
  --release) release=--release; shift ;;
  --version) version=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  *) echo "$usage" >&2; exit 64 ;;
  esac
done
case " ${arches[*]} " in
*" $arch "*) ;;
*) echo "build-package: cannot build for $arch; the builder knows ${arches[*]}" >&2; exit 64 ;;
esac
[ -n "$version" ] || version=$(scripts/version.py $release)

mkdir -p .cache "$out"
# One build at a time: engineers and targets share dist/ and the builder image.
exec 9>.cache/build-package.lock
flock 9

# Tracked and untracked-but-not-ignored files, less those deleted in the working tree.
files=()
while IFS= read -r -d '' f; do
  [ -e "$f" ] && files+=("$f")
done < <(git ls-files -z --cached --others --exclude-standard -- "${sources[@]}")
digest=$( (echo "$version $arch"; sha256sum -- "${files[@]}") | sha256sum | cut -c1-16)
stamp="$out/.sendmail-shim-$arch.stamp"
deb="$out/sendmail-shim_${version}_$arch.deb"
if [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ] && [ -f "$deb" ]; then
  echo "build-package: $deb is current"
  exit 0
fi

# An image made once from a base image by a script (given INPUT on its stdin), labelled with what went
# into it, and made again when any of that changes.
#   prepared_image IMAGE BASE SCRIPT [INPUT]
prepared_image() {
  local image=$1 from=$2 script=$3 input=${4:-/dev/null} revision name
  revision=$( (podman image inspect --format '{{.Id}}' "$from"; echo "$script"; cat "$input") | sha256sum | cut -c1-16)
  # Checkouts share the image: one prepares it while the others wait, then find it current.
  exec 8>"/var/tmp/sendmail-shim-image-${image//[^a-z0-9.-]/_}.lock"
  flock 8
  if [ "$(podman image inspect --format '{{index .Labels "sendmail-shim.build-revision"}}' "$image" 2>/dev/null)" = "$revision" ]; then
    exec 8>&-
    return
  fi
  echo "build-package: preparing $image (revision $revision)"
  name="sst-build-image-$$"
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman run -i --name "$name" "$from" sh -ec "$script" <"$input" >".cache/$name.log" 2>&1 || {
    tail -20 ".cache/$name.log" >&2
    podman rm -f "$name" >/dev/null
    echo "build-package: cannot prepare $image (log: .cache/$name.log)" >&2
    exit 1
  }
  podman commit -q --change "LABEL sendmail-shim.build-revision=$revision" "$name" "$image" >/dev/null
  podman rm "$name" >/dev/null
  rm -f ".cache/$name.log"
  exec 8>&-
}

scripts/build-images.sh "$base_suite" >/dev/null
# debian/control's build dependencies, and a cross toolchain and C library for every other architecture.
prepared_image "$builder" "$images:$base_suite" "
  mkdir -p /deps/debian
  cat >/deps/debian/control
  export DEBIAN_FRONTEND=noninteractive
  native=\$(dpkg --print-architecture)
  cross=''
  for arch in ${arches[*]}; do
    [ \"\$arch\" = \"\$native\" ] && continue
    dpkg --add-architecture \"\$arch\"
    cross=\"\$cross crossbuild-essential-\$arch libc6-dev:\$arch\"
  done
  apt-get update -qq
  apt-get build-dep -y -qq --no-install-recommends /deps
  apt-get install -y -qq --no-install-recommends \$cross
  apt-get clean
  rm -rf /var/lib/apt/lists/* /deps" debian/control

work=$(mktemp -d "$PWD/.cache/build-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
tar -c --null -T <(printf '%s\0' "${files[@]}") | tar -x -C "$work/src"
sed -i "s/^__version__ = \".*\"$/__version__ = \"$version\"/" "$work/src/$init"
# A build of another version than debian/changelog's newest entry (a development build) replaces that
# entry with its own; the committed entries below it stay.
if [ "$(sed -n '1s/^sendmail-shim (\(.*\)) .*/\1/p' debian/changelog)" != "$version" ]; then
  maintainer=$(sed -n 's/^Maintainer: //p' debian/control)
  {
    printf 'sendmail-shim (%s) UNRELEASED; urgency=medium\n\n' "$version"
    printf '  * Built by scripts/build-package.sh from commit %s.\n\n' "$(git rev-parse --short=7 HEAD)"
    printf ' -- %s  %s\n' "$maintainer" "$(git log -1 --format=%cD)"
    sed '1,/^ -- /d' debian/changelog
  } >"$work/src/debian/changelog"
fi

# dpkg-buildpackage -a: the same as the native build when ARCH is the container's own.
podman run --rm --name "sst-build-$$" -v "$work:/build" -w /build/src "$builder" \
  dpkg-buildpackage -a "$arch" -b -us -uc >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log" >&2; echo "build-package: dpkg-buildpackage failed" >&2; exit 1; }
built="$work/${deb##*/}"
[ -f "$built" ] || { echo "build-package: dpkg-buildpackage made no ${deb##*/}" >&2; exit 1; }

# A package with an error-level lintian tag never reaches $out; the output is kept for the record.
lintian_args=(--display-info --fail-on error)
have_lintian=$(lintian --version 2>/dev/null | sed -n 's/^Lintian v\{0,1\}//p') || true
if [ -n "$have_lintian" ] && dpkg --compare-versions "$have_lintian" ge "$lintian_min"; then
  lintian "${lintian_args[@]}" "$built" | tee ".cache/lintian-$arch.txt"
else
  scripts/build-images.sh "$lintian_suite" >/dev/null
  prepared_image "$lintian_image" "$images:$lintian_suite" "
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends lintian
    apt-get clean
    rm -rf /var/lib/apt/lists/*"
  podman run --rm --name "sst-lintian-$$" -v "$work:/build:ro" "$lintian_image" \
    lintian "${lintian_args[@]}" "/build/${deb##*/}" | tee ".cache/lintian-$arch.txt"
fi

rm -f "$out"/sendmail-shim_*_"$arch".deb "$out"/sendmail-shim_*_"$arch".buildinfo "$stamp"
# The .buildinfo goes with it: the release publishes how each package was built.
cp "$built" "${built%.deb}.buildinfo" "$out"/
echo "$digest" >"$stamp"
echo "build-package: built $deb"
