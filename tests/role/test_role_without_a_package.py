# SPDX-License-Identifier: MIT
"""With no .deb to install, the role stops before touching the host, with one line saying how to make one."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(ROOT / ".venv" / "bin" / "ansible-playbook")
PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: mailshim.sendmail_shim.sendmail_shim
      vars:
        sendmail_shim_package_dist_dir: {dist}
"""


def test_no_deb_in_the_dist_directory_fails_saying_make_package(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "unrelated_1.0_amd64.deb").write_bytes(b"")
    playbook = tmp_path / "site.yml"
    playbook.write_text(PLAYBOOK.format(dist=dist))
    # JSON results: the message as the role wrote it, not wrapped by the YAML callback.
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    run = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "--check",
            "-i",
            "localhost,",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(playbook),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode != 0
    assert run.stdout.count("fatal:") == 1
    (fatal,) = [line for line in run.stdout.splitlines() if line.startswith("fatal:")]
    result = json.loads(fatal.split(" => ", 1)[1])
    assert "\n" not in result["msg"]
    assert result["msg"].startswith(
        f"No sendmail-shim_*.deb in {dist}: run `make package` in the sendmail-shim"
    )
