#!/usr/bin/env bash
# Runs `molecule test` for each named scenario (default: all), goes on after a failure so that one
# run shows every broken scenario, prints the time each took, and exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$f")")"); done
fi

failed=()
summary=()
for s in "${scenarios[@]}"; do
  start=$SECONDS
  echo "=== molecule test -s $s"
  if molecule test -s "$s"; then
    summary+=("$(printf '%-12s passed in %4d s' "$s" $((SECONDS - start)))")
  else
    failed+=("$s")
    summary+=("$(printf '%-12s FAILED in %4d s' "$s" $((SECONDS - start)))")
    molecule destroy -s "$s" >/dev/null 2>&1 || true
  fi
done

echo "=== molecule summary"
printf '%s\n' "${summary[@]}"
echo "molecule: $((${#scenarios[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
