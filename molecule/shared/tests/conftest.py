# SPDX-License-Identifier: MIT
"""Helpers shared by every scenario's testinfra checks.

Each scenario describes the host it built through inventory variables (`sst_*`, set in its
molecule.yml) and the role's own `sendmail_shim_*` variables; the checks read them here instead of
hard-coding one scenario's expectations.
"""

import glob
import importlib.util
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import testinfra
import testinfra.utils.ansible_runner

REPO = Path(__file__).resolve().parents[3]
# The role's own Debian version order (its filter plugin), so that no check can disagree with the role on it.
_spec = importlib.util.spec_from_file_location(
    "debian_version", REPO / "filter_plugins" / "debian_version.py"
)
debian_version = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(debian_version)
# The controller's architecture, which the test containers share unless a scenario emulates another
# (sst_architecture): dist/ holds every architecture's build.
CONTROLLER_ARCH = subprocess.run(
    ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
).stdout.strip()


def expected_arch(host):
    """The Debian architecture that the scenario built its host for."""
    return host_vars(host).get("sst_architecture", CONTROLLER_ARCH)


def newest_deb(arch) -> str:
    """The newest .deb of dist/ for arch by Debian version order, as the role picks it."""
    return debian_version.newest_deb(glob.glob(str(REPO / "dist" / f"{PACKAGE}_*_{arch}.deb")))


# The installed layout's one home.
LAYOUT = json.loads((REPO / "files" / "sendmail_shim" / "layout.json").read_text())
PACKAGE = LAYOUT["package"]
LAUNCHER = LAYOUT["launcher"]
SHIM_DIR = f"{LAYOUT['libdir']}/sendmail_shim"
CONFIG = LAYOUT["config"]
ROLE_CONFIG = LAYOUT["role_config"]
LOG_DIR = LAYOUT["log_dir"]
LOG = LAYOUT["log"]
SERVICE_USER = LAYOUT["user"]
SERVICE_GROUP = LAYOUT["group"]
READER_GROUP = LAYOUT["log_group"]
TEST_USER = "sstuser"
TEST_PASSWORD = "sst-password"  # noqa: S105 - the throwaway user made by prepare.yml


@pytest.fixture(scope="module")
def host(host):
    """The same container over `podman exec`: through molecule's inventory, testinfra would run a whole
    `ansible` command for every check (seconds each). Molecule names each container after its host."""
    fast = testinfra.get_host(f"podman://{host.backend.host}")
    fast.inventory_vars = host.ansible.get_variables()
    return fast


def host_vars(host):
    return host.inventory_vars


def expected_state(host):
    return host_vars(host).get("sst_expected_state", "present")


@pytest.fixture
def shim_host(host):
    """The host, for checks that hold where the role is installed."""
    if expected_state(host) != "present":
        pytest.skip("the role was converged with state absent here")
    if host_vars(host).get("sst_image_build"):
        pytest.skip("an image-build container has no init; test_image_build.py boots its image")
    return host


@pytest.fixture
def clean_host(host):
    """The host, for checks that hold after state absent."""
    if expected_state(host) != "absent":
        pytest.skip("the role is installed here")
    return host


def recorder_on(host):
    """Whether sendmail hands messages to the recorder here: the package starts its socket, and only the
    role's sendmail_shim_recorder: false turns it off."""
    return bool(host_vars(host).get("sendmail_shim_recorder", True))


def expected_entry(host):
    """The path a message takes to the log on this host: sendmail_shim.entry of its record."""
    return "recorder" if recorder_on(host) else "exec"


def token(label):
    return f"sst-{label}-{uuid.uuid4().hex[:12]}"


def uid_of(host, user):
    return host.user(user).uid


def read_records(host, path=LOG):
    """Every record of a log file on the host, parsed; a line that is not JSON fails the test."""
    text = host.check_output(f"cat {path} 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def wait_for_record(host, needle, timeout=30.0, path=LOG, entry=None):
    """The first record whose raw message contains needle (and that came in by entry, when given: a cron
    job sends the same message every minute), waiting up to timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        for record in read_records(host, path):
            came_by = record.get("sendmail_shim", {}).get("entry")
            if needle in record.get("message", "") and entry in (None, came_by):
                return record
        if time.monotonic() > deadline:
            pytest.fail(f"no record containing {needle!r} (entry {entry}) in {path} after {timeout:.0f} s")
        time.sleep(2)


@pytest.fixture(params=["as_configured", "exec_path"])
def mail_entry(request, shim_host):
    """The entry that a caller's mail takes, once as the host is configured and, where the scenario sets
    sst_exec_path_callers, once more through the launcher's exec path with the recorder's socket stopped."""
    if request.param == "as_configured":
        yield expected_entry(shim_host)
        return
    if not (host_vars(shim_host).get("sst_exec_path_callers") and recorder_on(shim_host)):
        pytest.skip("callers take the exec path where the scenario sets sst_exec_path_callers")
    shim_host.check_output(f"systemctl stop {LAYOUT['recorder_socket']}")
    try:
        yield "exec"
    finally:
        shim_host.check_output(f"systemctl start {LAYOUT['recorder_socket']}")


def process_names(host):
    """The names (comm) of the host's processes, from /proc: a minimal host has no ps."""
    return host.check_output("cat /proc/[0-9]*/comm 2>/dev/null || true").split()


LISTENING = """
for path in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(path).read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":
            print(int(local.rsplit(":", 1)[1], 16))
"""


def listening_tcp_ports(host):
    """The TCP ports the host listens on, from /proc through its python3: a minimal host has no ss."""
    return {int(port) for port in host.check_output(f"python3 -c '{LISTENING}'").split()}


def as_user(user, command):
    """A shell command line that runs command as user, with a login-like environment."""
    return f"runuser -u {user} -- sh -c {json.dumps(command)}"


@pytest.fixture(scope="session")
def cron_tokens():
    """Installs a `* * * * *` job for the test user on every present host at once, so that the
    minute-long wait for cron is paid once per scenario rather than once per host."""
    runner = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
    tokens = {}
    for name in runner.get_hosts("all"):
        variables = runner.get_variables(name)
        if variables.get("sst_expected_state", "present") != "present" or variables.get("sst_image_build"):
            continue
        tokens[name] = token("cron")
        # Molecule names each podman container after its inventory host.
        testinfra.get_host(f"podman://{name}").check_output(
            f"echo '* * * * * echo {tokens[name]}' | crontab -u {TEST_USER} - && systemctl is-active cron"
        )
    yield tokens
    for name in tokens:
        testinfra.get_host(f"podman://{name}").run(f"crontab -u {TEST_USER} -r")
