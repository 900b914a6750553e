# SPDX-License-Identifier: MIT
"""mta_facts on canned dpkg-query and update-alternatives output (no dpkg needed)."""

import hashlib
import json
import sys

import mta_facts
import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

# dpkg-query -W -f '${Package}\t${Version}\t${db:Status-Abbrev}\t${Provides}\n' on Debian 12 with exim4.
DPKG_EXIM = (
    "bsd-mailx\t8.1.2-0.20220412cvs-1\tii \tmail-reader, mailx\n"
    "exim4-base\t4.96-15+deb12u10\tii \t\n"
    "exim4-config\t4.96-15+deb12u10\tii \texim4-config-2\n"
    "exim4-daemon-light\t4.96-15+deb12u10\tii \tdefault-mta, exim4-localscanapi-6.0, mail-transport-agent\n"
    "postfix\t3.7.11-0+deb12u1\tun \t\n"
    "libc6:amd64\t2.36-9+deb12u9\tii \t\n"
)
# After the swap: exim's packages left their configuration, the shim's package provides the MTA.
DPKG_SWAPPED = (
    "bsd-mailx\t8.1.2-0.20220412cvs-1\tii \tmail-reader, mailx\n"
    "exim4-base\t4.96-15+deb12u10\trc \t\n"
    "exim4-config\t4.96-15+deb12u10\trc \texim4-config-2\n"
    "exim4-daemon-light\t4.96-15+deb12u10\trc \tdefault-mta, mail-transport-agent\n"
    "sendmail-shim\t1.1.0\tii \tmail-transport-agent\n"
)
DPKG_S_EXIM = "exim4-daemon-light: /usr/sbin/sendmail\n"
ALTERNATIVES = """Name: sendmail
Link: /usr/sbin/sendmail
Slaves:
 mailq /usr/bin/mailq
 newaliases /usr/sbin/newaliases
 sendmail-lib /usr/lib/sendmail
Status: manual
Best: /usr/local/libexec/sendmail-shim/sendmail
Value: /usr/local/libexec/sendmail-shim/sendmail

Alternative: /usr/local/libexec/sendmail-shim/sendmail
Priority: 100
Slaves:
 mailq /usr/local/libexec/sendmail-shim/sendmail
 newaliases /usr/local/libexec/sendmail-shim/sendmail
 sendmail-lib /usr/local/libexec/sendmail-shim/sendmail
"""


class FakeModule:
    """Just what gather() uses of AnsibleModule, answering commands from a table."""

    def __init__(self, params, answers):
        self.params = {
            "sendmail_path": "/usr/sbin/sendmail",
            "alternative_name": "sendmail",
            "shim_libdir": "/nonexistent",
            "known_mta_packages": [],
            "packages": [],
            "systemd_runtime_dir": "/nonexistent",
            "files": [],
            "units": [],
            **params,
        }
        self.answers = answers
        self.commands = []
        self.missing = set()

    def get_bin_path(self, name, required=False):
        return None if name in self.missing else f"/usr/bin/{name}"

    def run_command(self, argv):
        self.commands.append(argv)
        return self.answers[argv[1]]

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs)


def answers(dpkg_list, dpkg_search=(1, "", "no path found"), alternatives=(2, "", "no alternatives")):
    return {
        "-W": (0, dpkg_list, ""),
        "--print-architecture": (0, "arm64\n", ""),
        "-S": dpkg_search,
        "--query": alternatives,
    }


def test_parse_dpkg_list_keeps_installed_and_config_files_only():
    packages = mta_facts.parse_dpkg_list(DPKG_EXIM + "broken line\n")
    assert "postfix" not in packages  # "un": known to dpkg but not installed
    assert packages["libc6"]["name"] == "libc6"  # architecture qualifier dropped
    assert packages["exim4-daemon-light"]["provides"] == [
        "default-mta",
        "exim4-localscanapi-6.0",
        "mail-transport-agent",
    ]
    assert mta_facts.parse_dpkg_list(DPKG_SWAPPED)["exim4-base"]["status"] == "config-files"


def test_parse_dpkg_list_strips_version_constraints_and_reports_partial_states():
    packages = mta_facts.parse_dpkg_list("x\t1\tiF \tmail-transport-agent (= 1), y\n")
    assert packages["x"]["provides"] == ["mail-transport-agent", "y"]
    assert packages["x"]["status"] == "partly-installed"


def test_exim_host(tmp_path):
    sendmail = tmp_path / "sendmail"
    sendmail.symlink_to("/bin/true")
    module = FakeModule(
        {"sendmail_path": str(sendmail), "known_mta_packages": ["exim4-base", "exim4-config", "postfix"]},
        answers(DPKG_EXIM, dpkg_search=(0, DPKG_S_EXIM, "")),
    )
    facts = mta_facts.gather(module)
    assert facts["mta_packages"] == [
        {"name": "exim4-daemon-light", "version": "4.96-15+deb12u10", "status": "installed"}
    ]
    assert [p["name"] for p in facts["known_mta_packages"]] == ["exim4-base", "exim4-config"]
    assert facts["sendmail"]["package"] == "exim4-daemon-light"
    assert facts["sendmail"]["is_link"] is True
    assert facts["sendmail"]["resolved"] == "/usr/bin/true"
    assert facts["sendmail"]["alternative"] is None
    assert facts["shim_version"] is None
    assert facts["architecture"] == "arm64"


def test_swapped_host(tmp_path):
    (tmp_path / "sendmail_shim").mkdir()
    (tmp_path / "sendmail_shim" / "__init__.py").write_text('"""doc"""\n__version__ = "1.2.3"\n')
    module = FakeModule(
        {"shim_libdir": str(tmp_path), "known_mta_packages": ["exim4-base"], "sendmail_path": "/nonexistent"},
        answers(DPKG_SWAPPED, alternatives=(0, ALTERNATIVES, "")),
    )
    facts = mta_facts.gather(module)
    assert [p["name"] for p in facts["mta_packages"]] == ["sendmail-shim"]
    assert facts["known_mta_packages"] == [
        {"name": "exim4-base", "version": "4.96-15+deb12u10", "status": "config-files"}
    ]
    assert facts["shim_version"] == "1.2.3"
    assert facts["sendmail"]["exists"] is False
    assert facts["sendmail"]["resolved"] is None
    alternative = facts["sendmail"]["alternative"]
    assert alternative["value"] == "/usr/local/libexec/sendmail-shim/sendmail"
    assert alternative["status"] == "manual"
    assert alternative["alternatives"] == [
        {
            "path": "/usr/local/libexec/sendmail-shim/sendmail",
            "priority": 100,
            "slaves": {
                "mailq": "/usr/local/libexec/sendmail-shim/sendmail",
                "newaliases": "/usr/local/libexec/sendmail-shim/sendmail",
                "sendmail-lib": "/usr/local/libexec/sendmail-shim/sendmail",
            },
        }
    ]


def test_packages_report_installed_versions_only():
    module = FakeModule({"packages": ["bsd-mailx", "exim4-base", "rsyslog"]}, answers(DPKG_SWAPPED))
    assert mta_facts.gather(module)["packages"] == {
        "bsd-mailx": "8.1.2-0.20220412cvs-1",
        "exim4-base": None,  # configuration files only
        "rsyslog": None,  # unknown to dpkg
    }


def test_systemd_booted_follows_the_runtime_directory(tmp_path):
    module = FakeModule({"systemd_runtime_dir": str(tmp_path)}, answers(DPKG_EXIM))
    assert mta_facts.gather(module)["systemd_booted"] is True
    module = FakeModule({"systemd_runtime_dir": str(tmp_path / "absent")}, answers(DPKG_EXIM))
    assert mta_facts.gather(module)["systemd_booted"] is False


def test_files_report_existence_and_sha1(tmp_path):
    (tmp_path / "conf").write_bytes(b"log_format = ecs\n")
    (tmp_path / "dir").mkdir()
    paths = [str(tmp_path / name) for name in ("conf", "dir", "missing")]
    module = FakeModule({"files": paths}, answers(DPKG_EXIM))
    assert mta_facts.gather(module)["files"] == {
        paths[0]: {"exists": True, "sha1": hashlib.sha1(b"log_format = ecs\n").hexdigest()},  # noqa: S324
        paths[1]: {"exists": True, "sha1": None},
        paths[2]: {"exists": False, "sha1": None},
    }


def test_units_report_what_systemctl_answers():
    table = {**answers(DPKG_EXIM), "is-enabled": (1, "disabled\n", ""), "is-active": (3, "inactive\n", "")}
    module = FakeModule({"units": ["sendmail-shim-smtp.socket"]}, table)
    assert mta_facts.gather(module)["units"] == {
        "sendmail-shim-smtp.socket": {"enabled": "disabled", "active": "inactive"}
    }
    module = FakeModule({"units": ["x.socket"]}, answers(DPKG_EXIM))
    module.missing = {"systemctl"}
    assert mta_facts.gather(module)["units"] == {"x.socket": {"enabled": "unknown", "active": "unknown"}}


def test_a_host_without_dpkg_fails_with_one_line():
    module = FakeModule({}, answers(DPKG_EXIM))
    module.missing = {"dpkg-query"}
    with pytest.raises(AssertionError, match="not of the Debian family"):
        mta_facts.gather(module)


def test_alternative_group_without_a_choice():
    parsed = mta_facts.parse_alternatives_query(
        "Name: sendmail\nLink: /usr/sbin/sendmail\nStatus: auto\nBest: \nValue: none\n"
    )
    assert parsed["value"] is None
    assert parsed["best"] is None
    assert parsed["alternatives"] == []
    assert mta_facts.parse_alternatives_query("") is None


def test_dpkg_search_skips_diversions():
    output = "diversion by foo from: /usr/sbin/sendmail\ndiversion by foo to: /usr/sbin/sendmail.real\n"
    assert mta_facts.parse_dpkg_search(output + "postfix: /usr/sbin/sendmail\n") == "postfix"
    assert mta_facts.parse_dpkg_search("sendmail-bin, postfix: /usr/sbin/sendmail\n") == "sendmail-bin"
    assert mta_facts.parse_dpkg_search(output) is None


def test_shim_version_missing_or_undefined(tmp_path):
    assert mta_facts.read_shim_version(str(tmp_path)) is None
    (tmp_path / "sendmail_shim").mkdir()
    (tmp_path / "sendmail_shim" / "__init__.py").write_text('"""no version here"""\n')
    assert mta_facts.read_shim_version(str(tmp_path)) is None


def test_dpkg_failure_fails_the_module():
    module = FakeModule({}, {"-W": (2, "", "dpkg: error")})
    with pytest.raises(AssertionError, match="dpkg-query -W failed"):
        mta_facts.gather(module)


def test_architecture_failure_fails_the_module():
    module = FakeModule({}, {**answers(DPKG_EXIM), "--print-architecture": (2, "", "dpkg: error")})
    with pytest.raises(AssertionError, match="dpkg --print-architecture failed"):
        mta_facts.gather(module)


def test_module_returns_facts_in_check_mode(monkeypatch, capsys):
    """The real AnsibleModule entry point: facts under ansible_facts.mta_facts, changed false."""
    args = {"ANSIBLE_MODULE_ARGS": {"_ansible_check_mode": True, "sendmail_path": "/nonexistent"}}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps(args)))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: name)

    def run_command(self, argv, **kwargs):
        return answers(DPKG_SWAPPED)[argv[1]]

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(sys, "argv", ["mta_facts"])
    with pytest.raises(SystemExit) as exited:
        mta_facts.main()
    assert exited.value.code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["changed"] is False
    assert result["ansible_facts"]["mta_facts"]["packages"] == {}
    assert result["mta_packages"] == result["ansible_facts"]["mta_facts"]["mta_packages"]


def test_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(mta_facts.DOCUMENTATION)
    assert doc["module"] == "mta_facts"
    documented = {
        name: {k: v for k, v in option.items() if k in ("type", "elements", "default", "choices")}
        for name, option in doc["options"].items()
    }
    assert documented == mta_facts.ARGUMENT_SPEC
    returned = yaml.safe_load(mta_facts.RETURN)
    assert set(returned) == set(mta_facts.gather(FakeModule({}, answers(DPKG_SWAPPED))))
