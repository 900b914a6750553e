# SPDX-License-Identifier: MIT
"""The role's choice of the newest .deb in dist/: Debian version order, as dpkg --compare-versions."""

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

PLUGIN = Path(__file__).resolve().parents[2] / "filter_plugins" / "debian_version.py"
spec = importlib.util.spec_from_file_location("debian_version", PLUGIN)
debian_version = importlib.util.module_from_spec(spec)
spec.loader.exec_module(debian_version)

# Each pair sorts first < second: tildes, revisions, digit runs, letters before other characters, epochs.
ORDERED = [
    ("1.0~rc1-1", "1.0-1"),
    ("1.0-1", "1.0-1+b1"),
    ("1.9-1", "1.10-1"),
    ("1.0-1", "1.0-2"),
    ("1.0a-1", "1.0+-1"),
    ("1.0", "1.0-0.1"),
    ("9.9-9", "1:0.1-1"),
    ("1.0~~", "1.0~"),
    ("0.09", "0.10"),
]


@pytest.mark.parametrize(("older", "newer"), ORDERED)
def test_compare_versions_orders_as_debian_does(older, newer):
    assert debian_version.compare_versions(older, newer) < 0
    assert debian_version.compare_versions(newer, older) > 0
    assert debian_version.compare_versions(newer, newer) == 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
@pytest.mark.parametrize(("older", "newer"), ORDERED)
def test_dpkg_agrees(older, newer):
    subprocess.run(["dpkg", "--compare-versions", older, "lt", newer], check=True)


def test_newest_deb_is_chosen_by_version_not_by_name_order():
    paths = [
        "/d/sendmail-shim_1.9.0-1_amd64.deb",
        "/d/sendmail-shim_1.10.0-1_amd64.deb",
        "/d/sendmail-shim_1.10.0~rc1-1_amd64.deb",
    ]
    assert debian_version.newest_deb(paths) == "/d/sendmail-shim_1.10.0-1_amd64.deb"
    assert debian_version.newest_deb([]) == ""


def test_a_file_not_named_like_a_package_fails():
    with pytest.raises(AnsibleFilterError):
        debian_version.newest_deb(["/d/sendmail-shim.deb", "/d/sendmail-shim_1.0-1_amd64.deb"])
    with pytest.raises(AnsibleFilterError, match=r"is not named PACKAGE_VERSION_ARCH\.deb"):
        debian_version.deb_architecture("/d/sendmail-shim_1.0.deb")


def test_architecture_and_version_are_read_from_the_name():
    path = "/d/sendmail-shim_1.1.0~dev5+g1a2b3c4_arm64.deb"
    assert debian_version.deb_architecture(path) == "arm64"
    assert debian_version.deb_version(path) == "1.1.0~dev5+g1a2b3c4"
