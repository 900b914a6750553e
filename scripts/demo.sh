#!/usr/bin/env bash
# The main job on an embedded default: a three-host fleet (Debian 11, 12, 13) in local systemd
# containers, made to look like stock Debian (exim4 + bsd-mailx), converged with playbooks/site.yml,
# checked with playbooks/verify.yml, then a real sudo failure and a real cron job on every host.
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

up() {
  say "Starting the demo fleet: one systemd container per Debian release"
  for suite in "${suites[@]}"; do
    name=sst-demo-$suite
    if ! podman container exists "$name"; then
      podman run -d --name "$name" --hostname "demo-$suite" --systemd=always \
        "localhost/sendmail-shim-test/debian:$suite" /sbin/init >/dev/null
    fi
    echo "  $name (Debian $suite)"
  done
  write_inventory

  say "Making the hosts look like stock Debian: exim4 as MTA, bsd-mailx as mail(1), a user 'sstuser'"
  ansible-playbook -i "$inventory" molecule/shared/prepare.yml >/tmp/sendmail-shim-demo-prepare.log ||
    { tail -n 40 /tmp/sendmail-shim-demo-prepare.log; exit 1; }
  for suite in "${suites[@]}"; do
    printf '  %-18s sendmail is %s\n' "sst-demo-$suite" \
      "$(podman exec "sst-demo-$suite" sh -c 'dpkg-query -S $(readlink -f /usr/sbin/sendmail)' | cut -d: -f1)"
  done

  if [ ! -d roles/sendmail_shim ] || [ ! -f playbooks/site.yml ]; then
    say "The role (roles/sendmail_shim) or playbooks/site.yml is missing: the fleet is up, nothing converged"
    exit 1
  fi

  # A real fleet goes in canary batches (site.yml's default); three demo hosts go at once.
  say "Converging the fleet: ansible-playbook playbooks/site.yml -e site_serial=100%"
  ansible-playbook -i "$inventory" playbooks/site.yml -e site_serial=100%

  say "What changed on every host"
  for suite in "${suites[@]}"; do
    # Port 25 from /proc/net (0019, state 0A = LISTEN): the minimal images have no ss.
    podman exec "sst-demo-$suite" sh -c '
      printf "  %-18s /usr/sbin/sendmail -> %s; package: %s; exim4: %s; listening on :25: %s; bsd-mailx: %s\n" "$0" \
        "$(readlink -f /usr/sbin/sendmail)" \
        "$(dpkg-query -W -f="\${Package} \${Version}" sendmail-shim 2>/dev/null || echo none)" \
        "$(dpkg-query -W -f="\${db:Status-Abbrev}" exim4-daemon-light 2>/dev/null | grep -q "^ii" && echo installed || echo removed)" \
        "$(grep -qE "^ *[0-9]+: [0-9A-F]+:0019 [0-9A-F]+:[0-9A-F]+ 0A " /proc/net/tcp /proc/net/tcp6 && echo yes || echo nothing)" \
        "$(dpkg-query -W -f="\${db:Status-Abbrev}" bsd-mailx | grep -q "^ii" && echo kept || echo GONE)"' "sst-demo-$suite"
  done

  say "Verifying every host: ansible-playbook playbooks/verify.yml"
  ansible-playbook -i "$inventory" playbooks/verify.yml

  say "On every host: a real sudo failure (sstuser is not in sudoers) and a real cron job of sstuser"
  declare -A cron_token
  for suite in "${suites[@]}"; do
    name=sst-demo-$suite
    cron_token[$suite]=demo-cron-$RANDOM$RANDOM
    podman exec "$name" sh -c \
      "runuser -u sstuser -- sh -c 'echo sst-password | sudo -S -k /usr/bin/apt-get moo' >/dev/null 2>&1 || true"
    podman exec "$name" sh -c \
      "echo '* * * * * echo \"nightly report ${cron_token[$suite]}\"' | crontab -u sstuser -"
    echo "  $name: sudo refused, cron job installed"
  done

  say "Waiting for cron's next minute (at most 90 s)"
  for suite in "${suites[@]}"; do
    for _ in $(seq 45); do
      podman exec "sst-demo-$suite" grep -q "${cron_token[$suite]}" "$log" && break
      sleep 2
    done
    podman exec "sst-demo-$suite" crontab -u sstuser -r
  done

  say "What landed in $log (one JSON line per message; Filebeat ships it)"
  for suite in "${suites[@]}"; do
    podman exec "sst-demo-$suite" cat "$log" |
      python3 scripts/show-records.py --host "sst-demo-$suite" --grep 'NOT in sudoers' --grep "${cron_token[$suite]}"
  done
  say "Done. Look around with: podman exec -it sst-demo-bookworm bash; remove the fleet with: make demo-clean"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 64 ;;
esac
