#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs `molecule test` for each named scenario (default: all), MOLECULE_JOBS at a time (default 2: the
# scenarios spend most of their time waiting on apt, dpkg and cron, not on the CPU). Goes on after a
# failure so that one run shows every broken scenario, prints each scenario's log as it ends and the time
# each took, and exits non-zero if any failed. A scenario on the emulated arm64 image is skipped, saying why,
# where scripts/binfmt-arm64.sh check says so (and fails where it fails).
set -uo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}
export PATH=$PWD/.venv/bin:$PATH

jobs=${MOLECULE_JOBS:-2}
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$f")")"); done
fi
logs=$(mktemp -d /tmp/sendmail-shim-molecule.XXXXXX)
# Made once here, so that concurrent ansible runs do not race to create it.
mkdir -p "$HOME/.ansible/collections/ansible_collections" "$HOME/.ansible/tmp"

run_one() {
  local s=$1 start=$SECONDS rc=0
  if grep -q 'image: .*-arm64$' "molecule/$s/molecule.yml"; then
    scripts/binfmt-arm64.sh check >"$logs/$s.log" 2>&1 || rc=$?
  fi
  if [ "$rc" -eq 0 ]; then
    molecule test -s "$s" >"$logs/$s.log" 2>&1 || {
      rc=$?
      molecule destroy -s "$s" >/dev/null 2>&1 || true
    }
  fi
  echo "$rc $((SECONDS - start))" >"$logs/$s.result"
  { echo "=== molecule test -s $s (exit $rc)"; cat "$logs/$s.log"; } >>"$logs/all.log"
}

for s in "${scenarios[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  echo "=== starting molecule scenario $s"
  run_one "$s" &
done
wait
cat "$logs/all.log"

echo "=== molecule summary"
failed=0 skipped=0
for s in "${scenarios[@]}"; do
  read -r rc took <"$logs/$s.result"
  if [ "$rc" -eq 0 ]; then
    word=passed
  elif [ "$rc" -eq 77 ]; then
    word=skipped skipped=$((skipped + 1))
  else
    word=FAILED failed=$((failed + 1))
  fi
  printf '%-12s %s in %4d s\n' "$s" "$word" "$took"
done
rm -rf "$logs"
echo "molecule: $((${#scenarios[@]} - failed - skipped)) passed, $skipped skipped, $failed failed"
[ "$failed" -eq 0 ]
