# SPDX-License-Identifier: MIT
"""With no .deb of the host's architecture to install, the role stops before changing the host, with one
line saying how to make one; a .deb of another architecture it refuses in one line naming both."""

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
      vars: {vars}
"""
HOST_ARCH = subprocess.run(
    ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
).stdout.strip()
OTHER_ARCH = "arm64" if HOST_ARCH != "arm64" else "amd64"


def fatal_message(tmp_path, **role_vars) -> str:
    """The one fatal line of a check-mode run of the role on this machine, with role_vars."""
    playbook = tmp_path / "site.yml"
    playbook.write_text(PLAYBOOK.format(vars=json.dumps(role_vars)))
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
    assert run.stdout.count("fatal:") == 1, run.stdout
    (fatal,) = [line for line in run.stdout.splitlines() if line.startswith("fatal:")]
    message = json.loads(fatal.split(" => ", 1)[1])["msg"]
    assert "\n" not in message
    return message


def test_no_deb_of_the_hosts_architecture_fails_naming_both_ways_to_a_package(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / f"unrelated_1.0_{HOST_ARCH}.deb").write_bytes(b"")
    (dist / f"sendmail-shim_1.0_{OTHER_ARCH}.deb").write_bytes(b"")
    message = fatal_message(tmp_path, sendmail_shim_package_dist_dir=str(dist))
    assert message.startswith(
        f"No sendmail-shim_*_{HOST_ARCH}.deb in {dist}: set sendmail_shim_package_source: repository (with "
        "sendmail_shim_repository_url and sendmail_shim_repository_key) to install from the release's apt "
        f"repository, or sendmail_shim_package_deb to the release's {HOST_ARCH} .deb"
    )


def test_a_deb_of_another_architecture_is_refused_naming_both(tmp_path):
    deb = tmp_path / f"sendmail-shim_1.0_{OTHER_ARCH}.deb"
    deb.write_bytes(b"")
    message = fatal_message(tmp_path, sendmail_shim_package_deb=str(deb))
    assert message.startswith(f"{deb.name} is a {OTHER_ARCH} package and this host is {HOST_ARCH}: ")
