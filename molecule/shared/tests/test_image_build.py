# SPDX-License-Identifier: MIT
"""A golden image built with the role (no init running) delivers cron mail to the log on first boot."""

import subprocess
import uuid

import pytest
import testinfra
from conftest import (
    LOG,
    TEST_USER,
    expected_entry,
    host_vars,
    listening_tcp_ports,
    process_names,
    token,
    uid_of,
    wait_for_record,
)


@pytest.fixture
def booted_image(host):
    if not host_vars(host).get("sst_image_build"):
        pytest.skip("only the image-build scenario commits its container as an image")
    name = host_vars(host)["inventory_hostname"]
    suffix = uuid.uuid4().hex[:8]
    image, booted = f"localhost/sendmail-shim-test/golden:{suffix}", f"{name}-booted-{suffix}"
    subprocess.run(["podman", "commit", "--quiet", name, image], check=True, capture_output=True)
    try:
        subprocess.run(
            ["podman", "run", "-d", "--name", booted, "--systemd=always", image, "/sbin/init"],
            check=True,
            capture_output=True,
        )
        booted_host = testinfra.get_host(f"podman://{booted}")
        booted_host.run("systemctl is-system-running --wait")
        yield booted_host
    finally:
        subprocess.run(["podman", "rm", "-f", booted], check=False, capture_output=True)
        subprocess.run(["podman", "rmi", "-f", image], check=False, capture_output=True)


def test_first_boot_delivers_cron_mail_to_the_log(host, booted_image):
    assert booted_image.file(LOG).is_file
    cron_token = token("first-boot")
    booted_image.check_output(f"echo '* * * * * echo {cron_token}' | crontab -u {TEST_USER} -")
    record = wait_for_record(booted_image, cron_token, timeout=90)
    assert record["user"]["id"] == str(uid_of(booted_image, TEST_USER))
    assert record["process"]["parent"]["name"] == "cron"
    # The package enabled the recorder's socket where no systemd ran; the first boot started it.
    assert record["sendmail_shim"]["entry"] == expected_entry(host)


def test_no_mta_daemon_and_no_port_25_after_first_boot(booted_image):
    assert 25 not in listening_tcp_ports(booted_image)
    assert "exim4" not in process_names(booted_image)
