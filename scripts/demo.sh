#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job on an embedded default: a three-host fleet (Debian 11, 12, 13) in local systemd
# containers, made to look like stock Debian (exim4 + bsd-mailx), converged with playbooks/site.yml,
# checked with playbooks/verify.yml, then a real sudo failure and a real cron job on every host, and the
# fleet report. One line per step says what it proved; Ansible's output goes to a log file it names.
# Usage: scripts/demo.sh up | down
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$PWD/ansible.cfg}
export PATH=$PWD/.venv/bin:$PATH

suites=(bullseye bookworm trixie)
# The installed layout's one home.
log=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["log"])' <files/sendmail_shim/layout.json)
inventory=inventory/demo/hosts.yml
demo_log=${SENDMAIL_SHIM_DEMO_LOG:-/tmp/sendmail-shim-demo.log}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

down() {
  for suite in "${suites[@]}"; do podman rm -f -t 5 "sst-demo-$suite" >/dev/null 2>&1 || true; done
  rm -rf inventory/demo
  echo "demo fleet removed"
}

write_inventory() {
  mkdir -p inventory/demo
  {
    echo "# Written by scripts/demo.sh for the local demo fleet."
    echo "all:"
    echo "  vars:"
    echo "    ansible_connection: containers.podman.podman"
    echo "    ansible_python_interpreter: /usr/bin/python3"
    echo "    # What prepare.yml installs so that the fleet starts as stock Debian does."
    echo "    sst_previous_mta_packages: [exim4-daemon-light]"
    echo "    sst_previous_mta_daemon: exim4"
    echo "    sst_mail_client_packages: [bsd-mailx]"
    echo "  hosts:"
    for suite in "${suites[@]}"; do echo "    sst-demo-$suite:"; done
  } >"$inventory"
}

# Each step prints one line with what it proved; Ansible's own output goes to $demo_log.
run_logged() {
  echo "=== $*" >>"$demo_log"
  "$@" >>"$demo_log" 2>&1 || { tail -n 40 "$demo_log"; echo "failed: $*; full output in $demo_log" >&2; exit 1; }
}

up() {
  : >"$demo_log"
  say "sendmail-shim demo: three Debian hosts, from stock exim4 to one JSON line per message"
  echo "  Ansible's full output goes to $demo_log"
  for suite in "${suites[@]}"; do
    name=sst-demo-$suite
    if ! podman container exists "$name"; then
      podman run -d --name "$name" --hostname "demo-$suite" --systemd=always \
        "localhost/sendmail-shim-test/debian:$suite" /sbin/init >/dev/null
    fi
  done
  write_inventory
  echo "1. fleet: ${suites[*]/#/sst-demo-} up, one systemd container per Debian release (11, 12, 13)"

  run_logged ansible-playbook -i "$inventory" molecule/shared/prepare.yml
  owners=$(for suite in "${suites[@]}"; do
    podman exec "sst-demo-$suite" sh -c 'dpkg-query -S $(readlink -f /usr/sbin/sendmail)' | cut -d: -f1
  done | sort -u | paste -sd, -)
  echo "2. stock: /usr/sbin/sendmail belongs to $owners on every host; bsd-mailx is mail(1); user sstuser exists"

  # A real fleet goes in canary batches (site.yml's default); three demo hosts go at once.
  run_logged ansible-playbook -i "$inventory" playbooks/site.yml -e site_serial=100%
  echo "3. converged: playbooks/site.yml installed dist/$(basename "$(ls dist/sendmail-shim_*_"$(dpkg --print-architecture)".deb | sort -V | tail -n 1)")" \
    "with apt on every host and probed each one (recap in $demo_log)"
  for suite in "${suites[@]}"; do
    # Port 25 from /proc/net (0019, state 0A = LISTEN): the minimal images have no ss.
    podman exec "sst-demo-$suite" sh -c '
      printf "   %-18s sendmail -> %s; %s; exim4 %s; :25 %s; bsd-mailx %s\n" "$0" \
        "$(readlink -f /usr/sbin/sendmail)" \
        "$(dpkg-query -W -f="\${Package} \${Version}" sendmail-shim 2>/dev/null || echo "no package")" \
        "$(dpkg-query -W -f="\${db:Status-Abbrev}" exim4-daemon-light 2>/dev/null | grep -q "^ii" && echo installed || echo removed)" \
        "$(grep -qE "^ *[0-9]+: [0-9A-F]+:0019 [0-9A-F]+:[0-9A-F]+ 0A " /proc/net/tcp /proc/net/tcp6 && echo listening || echo closed)" \
        "$(dpkg-query -W -f="\${db:Status-Abbrev}" bsd-mailx | grep -q "^ii" && echo kept || echo GONE)"' "sst-demo-$suite"
  done

  run_logged ansible-playbook -i "$inventory" playbooks/verify.yml
  echo "4. verified: playbooks/verify.yml sent a probe as root and as nobody on every host; each landed in $log"

  declare -A cron_token
  for suite in "${suites[@]}"; do
    name=sst-demo-$suite
    cron_token[$suite]=demo-cron-$RANDOM$RANDOM
    podman exec "$name" sh -c \
      "runuser -u sstuser -- sh -c 'echo sst-password | sudo -S -k /usr/bin/apt-get moo' >/dev/null 2>&1 || true"
    podman exec "$name" sh -c \
      "echo '* * * * * echo \"nightly report ${cron_token[$suite]}\"' | crontab -u sstuser -"
  done
  for suite in "${suites[@]}"; do
    for _ in $(seq 45); do
      podman exec "sst-demo-$suite" grep -q "${cron_token[$suite]}" "$log" && break
      sleep 2
    done
    podman exec "sst-demo-$suite" crontab -u sstuser -r
  done
  echo "5. real mail: sstuser's refused sudo and sstuser's cron job left these records (Filebeat ships them):"
  for suite in "${suites[@]}"; do
    podman exec "sst-demo-$suite" cat "$log" |
      python3 scripts/show-records.py --host "sst-demo-$suite" --grep 'NOT in sudoers' --grep "${cron_token[$suite]}"
  done

  echo "6. fleet report: playbooks/report.yml counted every host's log and merged the rows by kind:"
  scripts/demo-report.sh "$inventory" "$demo_log.report"
  say "Done. Look around with: podman exec -it sst-demo-bookworm bash; remove the fleet with: make demo-clean"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 64 ;;
esac
