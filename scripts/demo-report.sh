#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The fleet report of the demo fleet (or of any inventory): playbooks/report.yml, with Ansible's own output
# in a log file and only the fleet table printed. Meant to end scripts/demo.sh:
#   scripts/demo-report.sh [INVENTORY [LOG]]    (default inventory/demo/hosts.yml, /tmp/sendmail-shim-demo-report.log)
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$PWD/ansible.cfg}
export PATH=$PWD/.venv/bin:$PATH

inventory=${1:-inventory/demo/hosts.yml}
log=${2:-/tmp/sendmail-shim-demo-report.log}

if ! ANSIBLE_STDOUT_CALLBACK=ansible.builtin.json ansible-playbook -i "$inventory" playbooks/report.yml >"$log" 2>&1; then
  echo "playbooks/report.yml failed; its output is in $log" >&2
  exit 1
fi
# The json callback holds every task's result: print the one message of the "Fleet report" task.
python3 - "$log" <<'PY'
import json
import sys

with open(sys.argv[1], encoding="utf-8") as stream:
    text = stream.read()
run = json.loads(text[text.index("{"):])
for play in run["plays"]:
    for task in play["tasks"]:
        if task["task"]["name"] == "Fleet report":
            for result in task["hosts"].values():
                print(result["msg"])
PY
echo "(Ansible's output: $log)"
