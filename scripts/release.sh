#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Assembles a signed release directory from built files (docs/release.md says what a user does with it).
#   scripts/release.sh OUT FILE...
# FILEs are the packages (.deb), their .buildinfo files and the collection tarball. OUT receives them, a
# signed apt repository in OUT/apt (its pool keeps every .deb it ever held, so older versions stay
# pinnable), the public key as a binary keyring, and SHA256SUMS with its detached signature.
# The key: RELEASE_GNUPGHOME and RELEASE_KEY (a key id or fingerprint in that GnuPG home). Without them a
# throwaway key in .cache/release-throwaway-gnupg signs, which only a development version may use.
set -euo pipefail
cd "$(dirname "$0")/.."

# The repository's names live in the layout, which the role's apt source and pin read too; the codename is
# no Debian suite's, so that a pin on it matches nothing else.
layout() { python3 scripts/install-tree.py value "$1"; }
suite=$(layout release_suite)
codename=$(layout release_codename)
component=$(layout release_component)
origin=$(layout release_origin)
keyring_name=$(layout release_keyring)
throwaway_home=$PWD/.cache/release-throwaway-gnupg
throwaway_uid="sendmail-shim throwaway release key (tests only)"

[ $# -ge 2 ] || { echo "usage: $0 OUT FILE..." >&2; exit 64; }
out=$1
shift
debs=()
for file in "$@"; do
  [ -f "$file" ] || { echo "release: no file $file" >&2; exit 1; }
  case "$file" in *.deb) debs+=("$file") ;; esac
done
[ ${#debs[@]} -gt 0 ] || { echo "release: no .deb given" >&2; exit 1; }

# A release version has no ~dev and no +dirty: only a development build may be signed by a throwaway key.
development=0
for deb in "${debs[@]}"; do
  case "$(dpkg-deb -f "$deb" Version)" in *~dev* | *+dirty*) development=1 ;; esac
done

if [ -n "${RELEASE_GNUPGHOME:-}" ] || [ -n "${RELEASE_KEY:-}" ]; then
  [ -n "${RELEASE_GNUPGHOME:-}" ] && [ -n "${RELEASE_KEY:-}" ] ||
    { echo "release: set both RELEASE_GNUPGHOME and RELEASE_KEY" >&2; exit 64; }
  export GNUPGHOME=$RELEASE_GNUPGHOME
  key=$RELEASE_KEY
else
  [ "$development" -eq 1 ] ||
    { echo "release: a release version must be signed with RELEASE_GNUPGHOME and RELEASE_KEY, not a throwaway key" >&2; exit 64; }
  export GNUPGHOME=$throwaway_home
  if [ ! -f "$GNUPGHOME/throwaway" ]; then
    mkdir -p -m 0700 "$GNUPGHOME"
    gpg --batch --quiet --passphrase '' --quick-gen-key "$throwaway_uid" ed25519 sign 1y
    touch "$GNUPGHOME/throwaway"
  fi
  key=$(gpg --batch --quiet --with-colons --list-secret-keys "$throwaway_uid" | awk -F: '$1 == "fpr" { print $10; exit }')
  echo "release: signing with a throwaway key ($key) made for this checkout; tests only"
fi
gpg --batch --list-secret-keys "$key" >/dev/null 2>&1 || { echo "release: no secret key $key in $GNUPGHOME" >&2; exit 1; }
sign() { gpg --batch --yes --quiet --local-user "$key" "$@"; }

# The top level holds this release only; the pool keeps what earlier releases put there.
mkdir -p "$out/apt/pool/$component"
find "$out" -maxdepth 1 -type f -delete
for file in "$@"; do
  case "$file" in
  *.deb) cp "$file" "$out/apt/pool/$component/" && cp "$file" "$out/" ;;
  *) cp "$file" "$out/" ;;
  esac
done

# The index covers the whole pool, for each architecture; "all" is not built.
apt_dir=$out/apt
dist=dists/$suite
architectures=$(for deb in "$apt_dir/pool/$component"/*.deb; do dpkg-deb -f "$deb" Architecture; done | sort -u | tr '\n' ' ')
rm -rf "${apt_dir:?}/dists"
for arch in $architectures; do
  mkdir -p "$apt_dir/$dist/$component/binary-$arch"
  (cd "$apt_dir" && apt-ftparchive --arch "$arch" packages "pool/$component") >"$apt_dir/$dist/$component/binary-$arch/Packages"
  gzip -9n -k "$apt_dir/$dist/$component/binary-$arch/Packages"
done
(cd "$apt_dir" && apt-ftparchive \
  -o APT::FTPArchive::Release::Origin="$origin" -o APT::FTPArchive::Release::Label="$origin" \
  -o APT::FTPArchive::Release::Suite="$suite" -o APT::FTPArchive::Release::Codename="$codename" \
  -o APT::FTPArchive::Release::Architectures="${architectures% }" \
  -o APT::FTPArchive::Release::Components="$component" \
  -o APT::FTPArchive::Release::Description="sendmail-shim releases" \
  release "$dist") >"$apt_dir/$dist/Release.new"
mv "$apt_dir/$dist/Release.new" "$apt_dir/$dist/Release"
sign --clearsign --output "$apt_dir/$dist/InRelease" "$apt_dir/$dist/Release"
sign --armor --detach-sign --output "$apt_dir/$dist/Release.gpg" "$apt_dir/$dist/Release"

gpg --batch --export "$key" >"$out/$keyring_name"

# Every file of the release but the sums themselves, by path relative to OUT.
(cd "$out" && find . -type f ! -name 'SHA256SUMS*' -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum) >"$out/SHA256SUMS"
sign --detach-sign --output "$out/SHA256SUMS.gpg" "$out/SHA256SUMS"
echo "release: $out signed by $key"
