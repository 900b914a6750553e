# SPDX-License-Identifier: MIT
"""playbooks/report.yml on three local "hosts": two answer and are merged by kind, one is named as silent."""

import json
import os
import pathlib
import subprocess
import sys

import yaml
from records_support import ecs

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_fleet_table_merges_the_hosts_by_kind(tmp_path):
    logs = {
        "web01": [ecs("2026-11-29T10:00:00Z", f"Job {i} failed", host="web01") for i in range(3)],
        "db01": [ecs("2026-11-29T11:00:00Z", "Job 7 failed", host="db01")]
        + [ecs("2026-11-29T12:00:00Z", "Disk 91% full", host="db01", user="postgres")] * 5,
    }
    hosts = {}
    for host, lines in logs.items():
        log = tmp_path / f"{host}.ndjson"
        log.write_text("".join(line + "\n" for line in lines))
        hosts[host] = {"report_logs": [str(log)], "sendmail_shim_libdir": str(ROOT / "files")}
    hosts["silent01"] = {"sendmail_shim_libdir": str(tmp_path / "no-shim")}
    inventory = tmp_path / "hosts.yml"
    common = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    common["ansible_become"] = False
    inventory.write_text(yaml.safe_dump({"all": {"vars": common, "hosts": hosts}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    done = subprocess.run(
        [
            str(pathlib.Path(sys.executable).parent / "ansible-playbook"),
            *("-i", str(inventory), str(ROOT / "playbooks" / "report.yml")),
            *("-e", json.dumps({"report_top": 5})),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    job = next(line for line in out.splitlines() if "Job <n> failed" in line)
    assert job.split()[0] == "4"
    assert "db01 (1), web01 (3)" not in job and "web01 (3), db01 (1)" in job
    assert "root (4); cron (4)" in job
    disk = next(line for line in out.splitlines() if "Disk <n>% full" in line)
    assert disk.split()[0] == "5" and "db01 (5); postgres (5)" in disk
    assert "9  records on 2 hosts" in out
    assert "no answer from silent01: " in out and "No such file or directory" in out
