# SPDX-License-Identifier: MIT
"""The config set: the package's main file, then the drop-ins of its directory in lexical order."""

import json
import shutil
import subprocess

import pytest
from sendmail_shim import config
from shimtest import FILES, PYTHON


@pytest.fixture
def conf(tmp_path):
    main = tmp_path / "sendmail-shim.conf"
    drop_ins = tmp_path / "sendmail-shim.conf.d"
    drop_ins.mkdir()
    return main, drop_ins


def test_drop_ins_apply_after_the_main_file_in_lexical_order(conf):
    main, drop_ins = conf
    main.write_text("log_format = classic\nhostname = main\nmax_message_bytes = 1K\n")
    (drop_ins / "50-ansible.conf").write_text("hostname = fifty\nfallback = none\n")
    (drop_ins / "90-local.conf").write_text("hostname = ninety\n")
    (drop_ins / "10-early.conf").write_text("hostname = ten\nmax_message_bytes = 2K\n")
    cfg, problems = config.load_set(str(main), str(drop_ins))
    assert problems == []
    assert (cfg.log_format, cfg.hostname, cfg.max_message_bytes, cfg.fallback) == (
        "classic",
        "ninety",
        2048,
        "none",
    )
    assert cfg.path == str(drop_ins / "90-local.conf")


def test_only_conf_files_that_are_not_hidden_count(conf):
    main, drop_ins = conf
    for name in ("50-ansible.conf.dpkg-old", "50-ansible.conf~", ".60-hidden.conf", "README"):
        (drop_ins / name).write_text("hostname = wrong\n")
    cfg, problems = config.load_set(str(main), str(drop_ins))
    assert problems == []
    assert cfg.hostname is None


def test_a_bad_drop_in_is_reported_with_its_path_and_the_rest_still_applies(conf):
    main, drop_ins = conf
    (drop_ins / "20-bad.conf").write_text("fallback = maybe\nhostname = good\n")
    (drop_ins / "30-later.conf").write_text("log_format = classic\n")
    cfg, problems = config.load_set(str(main), str(drop_ins))
    assert problems == [
        f"{drop_ins / '20-bad.conf'} line 1: bad value 'maybe' for key 'fallback': expected syslog or none"
    ]
    assert (cfg.hostname, cfg.log_format, cfg.fallback) == ("good", "classic", "syslog")


def test_a_key_may_be_set_once_per_file_and_again_in_a_later_file(conf):
    main, drop_ins = conf
    main.write_text("hostname = a\nhostname = b\n")
    (drop_ins / "50.conf").write_text("hostname = c\n")
    cfg, problems = config.load_set(str(main), str(drop_ins))
    assert problems == [f"{main} line 2: key 'hostname' is set twice"]
    assert cfg.hostname == "c"


def test_missing_main_file_and_directory_mean_the_defaults(tmp_path):
    cfg, problems = config.load_set(str(tmp_path / "none.conf"), str(tmp_path / "none.d"))
    assert problems == []
    assert vars(cfg) == vars(config.Config(None))


def test_unreadable_drop_in_directory_is_a_problem(conf):
    main, drop_ins = conf
    drop_ins.rmdir()
    drop_ins.write_text("")  # a file where the directory should be
    _, problems = config.load_set(str(main), str(drop_ins))
    assert len(problems) == 1 and problems[0].startswith(f"{drop_ins}: cannot list")


def test_defaults_come_from_the_layout():
    layout = json.loads((FILES / "sendmail_shim" / "layout.json").read_text())
    assert (layout["config"], layout["config_dir"]) == (config.DEFAULT_PATH, config.DROP_IN_DIR)
    assert (config.Config().log_path, config.Config().service_user) == (layout["log"], layout["user"])


@pytest.fixture
def installed(tmp_path):
    """A copy of the shim whose layout puts the config set under tmp_path."""
    package = tmp_path / "lib" / "sendmail_shim"
    shutil.copytree(FILES / "sendmail_shim", package, ignore=shutil.ignore_patterns("__pycache__"))
    layout = json.loads((package / "layout.json").read_text())
    layout.update(config=str(tmp_path / "main.conf"), config_dir=str(tmp_path / "conf.d"))
    (package / "layout.json").write_text(json.dumps(layout))
    (tmp_path / "conf.d").mkdir()
    return tmp_path


def validate(installed, *args):
    return subprocess.run(
        [PYTHON, "-m", "sendmail_shim.config", *map(str, args)],
        capture_output=True, text=True, env={"PYTHONPATH": str(installed / "lib")},
    )  # fmt: skip


def test_validator_without_a_file_checks_the_whole_set(installed):
    (installed / "main.conf").write_text("log_format = ecs\n")
    (installed / "conf.d" / "50-ansible.conf").write_text("log_format = classic\n")
    assert validate(installed).returncode == 0
    (installed / "conf.d" / "70-typo.conf").write_text("log_fromat = ecs\n")
    proc = validate(installed)
    assert proc.returncode == 78
    assert proc.stderr.startswith(
        f"sendmail-shim: {installed / 'conf.d' / '70-typo.conf'} line 1: unknown key"
    )


def test_validator_with_a_file_checks_only_that_file(installed):
    (installed / "conf.d" / "70-typo.conf").write_text("log_fromat = ecs\n")
    good = installed / "candidate.conf"
    good.write_text("fallback = none\n")
    assert validate(installed, good).returncode == 0


def test_the_layout_is_read_as_json_reads_it():
    layout = FILES / "sendmail_shim" / "layout.json"
    assert json.loads(layout.read_text()) == config.LAYOUT


@pytest.mark.parametrize("text", ["{} x", "nope", "", '{"a": 1'])
def test_the_layout_reader_refuses_what_is_not_one_json_value(text):
    with pytest.raises(ValueError):
        config._load_json(text)
