# SPDX-License-Identifier: MIT
"""The Packer templates: validated with Debian's packer, and the image pipeline built for real locally.

The real build uses packer/local-test/ (null builder over SSH, the same ansible provisioner as the AWS
template) against a systemd container, commits the container as an image, boots a new container from that
image and shows that a user's cron mail lands in the shim's log on first boot.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKER = "/usr/bin/packer"
BASE_IMAGE = "localhost/sendmail-shim-test/debian:bookworm"
LAYOUT = json.loads((REPO / "files" / "sendmail_shim" / "layout.json").read_text())
LOG = LAYOUT["log"]
LAUNCHER = LAYOUT["launcher"]
CRON_USER = "sstapp"

requires_packer = pytest.mark.skipif(
    not os.access(PACKER, os.X_OK),
    reason=f"Debian's packer ({PACKER}) is not installed: scripts/bootstrap.sh installs it",
)


def packer_env() -> dict[str, str]:
    """What the ansible provisioner needs: the project's ansible-playbook first on PATH, its config."""
    env = dict(os.environ)
    env["PATH"] = f"{REPO / '.venv/bin'}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_HOST_KEY_CHECKING"] = "False"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["CHECKPOINT_DISABLE"] = "1"  # no version check against HashiCorp's servers
    env.setdefault("CONTAINERS_CONF", str(REPO / "containers/containers.conf"))
    return env


def packer(*args: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PACKER, *args], cwd=cwd, env=packer_env(), capture_output=True, text=True, timeout=timeout
    )


def packer_version() -> tuple[int, ...]:
    out = subprocess.run([PACKER, "version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(n) for n in re.search(r"(\d+)\.(\d+)\.(\d+)", out).groups())


def ssh_key(directory: Path) -> Path:
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sst-fleet", "-f", key], check=True)
    return key


def quick_start() -> str:
    """The commands that open packer/README.md, as written there."""
    readme = (REPO / "packer/README.md").read_text()
    return readme.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]


@requires_packer
def test_readme_quick_start_validates_the_aws_template_for_amd64_and_graviton(tmp_path):
    # Only the build template, copied alone: Packer 1.6 rejects the required_plugins block (next tests).
    # Packer 1.6 says nothing when a template is valid; bash -e stops at the first command that fails.
    assert packer_version() == (1, 6, 6), "packer/README.md names the Packer version that the tests use"
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", quick_start()],
        cwd=REPO, env={**packer_env(), "TMPDIR": str(tmp_path)},
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


@requires_packer
def test_aws_template_validates_for_ubuntu(tmp_path):
    shutil.copy(REPO / "packer/aws-golden-image.pkr.hcl", tmp_path)
    out = packer(
        "validate",
        "-var", f"repository={REPO}",
        "-var", "region=us-east-1",
        "-var", 'source_ami_owners=["099720109477"]',
        "-var", "source_ami_name=ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*",
        "-var", "ssh_username=ubuntu",
        "-var", 'ansible_extra_vars=["sendmail_shim_log_group=adm"]',
        str(tmp_path),
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


@requires_packer
def test_aws_template_rejects_an_unknown_variable(tmp_path):
    # Proves that validate reads the template for real rather than accepting anything.
    shutil.copy(REPO / "packer/aws-golden-image.pkr.hcl", tmp_path)
    out = packer(
        "validate", "-var", f"repository={REPO}", "-var", "no_such_var=1", str(tmp_path), cwd=tmp_path
    )
    assert out.returncode != 0
    assert "no_such_var" in out.stdout + out.stderr


@requires_packer
def test_required_plugins_is_kept_apart_for_old_packer(tmp_path):
    if packer_version() >= (1, 7, 0):
        pytest.skip("this packer understands required_plugins: nothing to keep apart from")
    for name in ("aws-golden-image.pkr.hcl", "plugins.pkr.hcl"):
        shutil.copy(REPO / "packer" / name, tmp_path)
    out = packer("validate", "-var", f"repository={REPO}", str(tmp_path), cwd=tmp_path)
    assert out.returncode != 0
    assert "required_plugins" in out.stdout + out.stderr


@requires_packer
def test_local_test_template_validates(tmp_path):
    out = packer(
        "validate",
        "-var", "ssh_port=2222",
        "-var", f"ssh_private_key_file={ssh_key(tmp_path)}",
        str(REPO / "packer/local-test"),
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


# --- the real build --------------------------------------------------------------------------------------


def podman(*args: str, timeout: int = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(
        ["podman", *args], env=packer_env(), capture_output=True, text=True, timeout=timeout, **kwargs
    )
    if check and out.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {out.returncode}\n{out.stdout}{out.stderr}")
    return out


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_boot(name: str) -> None:
    # 1 is "degraded": some unit of the minimal image failed, which does not matter here.
    out = podman("exec", name, "systemctl", "is-system-running", "--wait", timeout=180, check=False)
    assert out.returncode in (0, 1), out.stdout + out.stderr


def wait_for_ssh(port: int, key: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    options = [
        "BatchMode=yes",
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "ConnectTimeout=5",
    ]
    cmd = ["ssh", "-i", str(key), "-p", str(port), *(f"-o{o}" for o in options), "root@127.0.0.1", "true"]
    while True:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"sshd in the build container never let us in: {out.stderr}")
        time.sleep(1)


class Podman:
    """Containers and images of one test, all named sst-fleet-*, removed at the end whatever happens."""

    def __init__(self):
        self.suffix = secrets.token_hex(3)
        self.containers: list[str] = []
        self.images: list[str] = []

    def run_systemd(self, role: str, image: str, *extra: str) -> str:
        name = f"sst-fleet-{role}-{self.suffix}"
        self.containers.append(name)
        podman(
            "run", "-d", "--name", name, "--hostname", name, "--systemd=always", *extra, image, "/sbin/init"
        )
        wait_for_boot(name)
        return name

    def commit(self, container: str) -> str:
        image = f"localhost/sst-fleet-golden:{self.suffix}"
        self.images.append(image)
        podman("commit", "--quiet", container, image, timeout=600)
        return image

    def cleanup(self) -> None:
        for name in self.containers:
            podman("rm", "-f", "-t", "5", name, check=False, timeout=120)
        for image in self.images:
            podman("rmi", "-f", image, check=False, timeout=120)


@pytest.fixture
def containers():
    if os.geteuid() != 0:
        pytest.skip("needs root: rootful podman with systemd containers")
    if shutil.which("podman") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("needs podman and ssh-keygen (scripts/bootstrap.sh installs them)")
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        pytest.skip(f"needs {BASE_IMAGE}: make images")
    pod = Podman()
    yield pod
    pod.cleanup()


def log_records(container: str) -> list[dict]:
    out = podman("exec", container, "cat", LOG, check=False)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@pytest.mark.container
@pytest.mark.root
@requires_packer
def test_packer_build_then_cron_mail_on_first_boot(tmp_path, containers):
    key = ssh_key(tmp_path)
    port = free_loopback_port()

    # The machine Packer provisions: a stock systemd Debian with sshd, and an application user whose
    # cron job will mail. The base image has cron but no MTA, like a minimal cloud image.
    build = containers.run_systemd("build", BASE_IMAGE, "-p", f"127.0.0.1:{port}:22")
    podman(
        "exec", build, "sh", "-euc",
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"
        " openssh-server >/dev/null && systemctl enable --now ssh"
        f" && useradd --create-home --shell /bin/sh {CRON_USER}",
        timeout=600,
    )  # fmt: skip
    podman(
        "exec", "-i", build, "sh", "-euc",
        "install -d -m 700 /root/.ssh && umask 077 && cat > /root/.ssh/authorized_keys",
        input=Path(f"{key}.pub").read_text(),
    )  # fmt: skip
    wait_for_ssh(port, key)

    out = packer(
        "build", "-color=false",
        "-var", f"ssh_port={port}",
        "-var", f"ssh_private_key_file={key}",
        "-var", f"repository={REPO}",
        str(REPO / "packer/local-test"),
        cwd=tmp_path,
        timeout=1800,
    )  # fmt: skip
    transcript = out.stdout + out.stderr
    assert out.returncode == 0, transcript[-6000:]
    recap = re.search(r"default\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", transcript)
    assert recap and int(recap.group(1)) > 0, transcript[-6000:]

    # What Packer left is the image's content: the package installed and wired in, and no record yet (the
    # image-build flavour sends no probe), so every record of the next boot comes from the new instance.
    realpath = podman("exec", build, "readlink", "-f", "/usr/sbin/sendmail").stdout.strip()
    assert realpath == LAUNCHER
    owner = podman("exec", build, "dpkg-query", "--search", LAUNCHER).stdout.split(":")[0]
    assert owner == LAYOUT["package"]
    assert podman("exec", build, "test", "-f", LOG, check=False).returncode == 0, f"no {LOG} in the image"
    assert log_records(build) == []

    # The job exists only in the image: cron is stopped first so that the build container never runs it.
    token = f"sst-fleet-cron-{secrets.token_hex(8)}"
    podman("exec", build, "systemctl", "stop", "cron")
    podman(
        "exec", "-i", build, "crontab", "-u", CRON_USER, "-",
        input=f"* * * * * echo {token}\n",
    )  # fmt: skip
    podman("stop", "-t", "30", build, timeout=120)
    image = containers.commit(build)

    # First boot of an instance of the image: no Ansible, no Packer, only what the image carries.
    instance = containers.run_systemd("instance", image)
    deadline = time.monotonic() + 90
    mine = []
    while not mine and time.monotonic() < deadline:
        time.sleep(3)
        mine = [r for r in log_records(instance) if token in json.dumps(r)]
    assert mine, f"no cron record with {token} within 90 s of first boot; log: {log_records(instance)}"

    record = mine[0]
    uid = podman("exec", instance, "id", "-u", CRON_USER).stdout.strip()
    assert record["user"] == {"id": uid, "name": CRON_USER}
    assert record["process"]["parent"]["name"] == "cron"
    # Written on the instance, under its own name, not the build machine's.
    assert record["host"]["hostname"] == instance
    assert instance != build
