#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make bench`: the shim on both of its paths (recorder, exec) next to exim4, postfix and nullmailer in
# containers (bench/run.py); prints the tables and writes docs/benchmarks.md. Extra arguments go to
# bench/run.py (--quick, --messages-only, --converge-only, --wait-quiet N, --json F).
# Then, as a separate step on this machine, `sendmail-shim report` on a 1 GiB log (bench/report_bench.py;
# its figures go to docs/report.md by hand), except with --messages-only. REPORT_BENCH_MIB sets the size.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$PWD/ansible.cfg}
export PATH=$PWD/.venv/bin:$PATH

# bench/run.py removes its containers itself; this catches the case where it is killed before it can.
cleanup() {
  local names
  names=$(podman ps -a --format '{{.Names}}' | grep '^sst-bench-' || true)
  if [ -n "$names" ]; then
    # shellcheck disable=SC2086 # one container name per word
    podman rm -f -t 2 $names >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT INT TERM

python3 bench/run.py "$@"

for arg in "$@"; do
  [ "$arg" != --messages-only ] || exit 0
done
echo
echo "== sendmail-shim report on a ${REPORT_BENCH_MIB:-1024} MiB log"
python3 bench/report_bench.py --size-mib "${REPORT_BENCH_MIB:-1024}"
