# SPDX-License-Identifier: MIT
"""The emulated arm64 host (docs/arm64.md) can run the setuid launcher: its image is an arm64 image and a
setuid-root arm64 binary gets euid 0 there, which qemu-aarch64's flags OCF give and Debian's PF do not.
The molecule scenario arm64 then runs the package's own launcher on it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/sendmail-shim-test/debian:bookworm-arm64"
NOBODY = 65534

pytestmark = [pytest.mark.root, pytest.mark.container]


@pytest.fixture(scope="module")
def arm64_image():
    """The image, where binfmt_misc can run it; a skip saying why elsewhere, a failure in CI."""
    check = subprocess.run(
        [REPO / "scripts" / "binfmt-arm64.sh", "check"], capture_output=True, text=True, check=False
    )
    if check.returncode == 77:
        pytest.skip(check.stdout.strip())
    assert check.returncode == 0, check.stdout + check.stderr
    env = dict(
        os.environ,
        CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", str(REPO / "containers/containers.conf")),
    )
    labelled = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Architecture}}", IMAGE],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert labelled.returncode == 0, f"{IMAGE} is missing: `make images` builds it\n{labelled.stderr}"
    assert labelled.stdout.strip() == "arm64"
    return env


def test_a_setuid_root_arm64_binary_gets_euid_0(arm64_image):
    # id(1) prints the effective uid: a setuid-root copy run by nobody says 0, the plain one nobody's.
    script = (
        "uname -m; cp /usr/bin/id /usr/local/bin/id-setuid && chmod 4755 /usr/local/bin/id-setuid;"
        f" for id in /usr/bin/id /usr/local/bin/id-setuid; do"
        f" setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups $id -u; done"
    )
    run = subprocess.run(
        ["podman", "run", "--rm", "--network=none", IMAGE, "sh", "-ec", script],
        capture_output=True,
        text=True,
        env=arm64_image,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["aarch64", str(NOBODY), "0"]
