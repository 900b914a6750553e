# SPDX-License-Identifier: MIT
"""Where the launcher gets the dedicated ids: its setgid group, and the owner of the state directory.

Nothing about the dedicated user is compiled in. A state directory that only root could have prepared
(a real directory in a root-owned parent nobody else writes, owned by a non-root user and the
launcher's group) gives the uid; anything else stops the launcher with 71 before the entry runs. The
same uid is the one the recorder's socket must belong to: the last tests put a stand-in recorder at the
spoilable launcher's socket place.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from launcher_support import Peer, as_user, records, run

pytestmark = pytest.mark.root


def refused(spoilable, proc) -> str:
    assert proc.returncode == 71, proc.stderr
    assert not spoilable.reported(), "the entry ran although the launcher refused"
    stderr = proc.stderr.decode()
    assert stderr.startswith("sendmail-shim: launcher: ") and stderr.endswith("; message not accepted\n")
    return stderr


def test_sound_state_dir_gives_the_dedicated_user(spoilable, caller, svc, standin):
    proc = run(as_user(caller, spoilable.launcher))
    assert proc.returncode == 0, proc.stderr
    assert standin.report()["resuid"] == [svc.uid] * 3
    assert standin.report()["resgid"] == [svc.gid] * 3


def test_uid_follows_the_state_dir_owner_not_the_build(spoilable, caller, svc, standin):
    # Any non-root owner root chose: the launcher runs the entry as that uid, with its own setgid group.
    os.chown(spoilable.state_dir, caller.uid, svc.gid)
    proc = run([str(spoilable.launcher)])
    assert proc.returncode == 0, proc.stderr
    assert standin.report()["resuid"] == [caller.uid] * 3
    assert standin.report()["resgid"] == [svc.gid] * 3


def test_missing_state_dir_is_refused(spoilable, caller):
    spoilable.state_dir.rmdir()
    assert "cannot stat" in refused(spoilable, run(as_user(caller, spoilable.launcher)))


def test_symlink_to_a_sound_directory_is_refused(spoilable, caller, prefix):
    # A link is not followed (lstat): whoever could plant it would choose the uid.
    real = prefix / "spoilable-target"
    spoilable.state_dir.rename(real)
    try:
        spoilable.state_dir.symlink_to(real)
        assert "is not a directory" in refused(spoilable, run(as_user(caller, spoilable.launcher)))
    finally:
        real.rmdir()


def test_file_in_place_of_the_state_dir_is_refused(spoilable, caller, svc):
    spoilable.state_dir.rmdir()
    spoilable.state_dir.write_text("")
    os.chown(spoilable.state_dir, svc.uid, svc.gid)
    assert "is not a directory" in refused(spoilable, run(as_user(caller, spoilable.launcher)))


def test_root_owned_state_dir_is_refused(spoilable, caller, svc):
    os.chown(spoilable.state_dir, 0, svc.gid)
    assert "must belong to the dedicated user" in refused(spoilable, run(as_user(caller, spoilable.launcher)))


def test_state_dir_of_another_group_is_refused(spoilable, caller, svc):
    os.chown(spoilable.state_dir, svc.uid, caller.gid)
    assert "must belong to the dedicated user" in refused(spoilable, run(as_user(caller, spoilable.launcher)))


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o1777])
def test_parent_writable_by_others_is_refused(spoilable, caller, mode):
    # Whoever may write the parent may swap the state directory for one of their own.
    spoilable.parent.chmod(mode)
    assert "only root can write" in refused(spoilable, run(as_user(caller, spoilable.launcher)))


def test_parent_owned_by_another_user_is_refused(spoilable, caller, svc):
    os.chown(spoilable.parent, svc.uid, 0)
    assert "only root can write" in refused(spoilable, run(as_user(caller, spoilable.launcher)))


def test_launcher_without_its_setgid_bit_is_refused(spoilable, caller):
    # setuid root alone: the caller's own gid would become the shim's group.
    launcher: Path = spoilable.launcher
    launcher.chmod(0o4755)
    try:
        assert "must belong to the dedicated user" in refused(spoilable, run(as_user(caller, launcher)))
    finally:
        launcher.chmod(0o6755)


def test_root_group_is_never_taken(spoilable, svc):
    # Root without the setgid bit's effect takes the directory's group, which must not be root's either.
    os.chown(spoilable.state_dir, svc.uid, 0)
    proc = run(["setpriv", "--no-new-privs", "--", str(spoilable.launcher)])
    assert "not setgid to the dedicated group" in refused(spoilable, proc)


def test_root_caller_without_the_setgid_effect_still_drops(spoilable, svc, standin):
    # Root under NoNewPrivileges (a hardened unit running as root): the setgid bit is ignored, egid is 0.
    proc = run(["setpriv", "--no-new-privs", "--", str(spoilable.launcher)])
    assert proc.returncode == 0, proc.stderr
    assert standin.report()["resuid"] == [svc.uid] * 3
    assert standin.report()["resgid"] == [svc.gid] * 3
    assert standin.report()["groups"] == []


def test_socket_of_the_state_dirs_owner_is_used(spoilable, caller, svc):
    peer = Peer(spoilable.parent / "recorder.sock", svc.uid, records(0))
    proc = run(as_user(caller, spoilable.launcher))
    assert proc.returncode == 0, proc.stderr
    assert [c["uid"] for c in peer.close()] == [caller.uid]
    assert not spoilable.reported()


@pytest.mark.parametrize("spoil", ["owner_changed", "root_owned"])
def test_socket_trust_follows_the_state_dir(spoilable, caller, svc, spoil):
    """A socket of the former owner is not trusted once root gave the directory to another user, nor any
    socket when the directory is refused (then the exec path stops with 71, as without a recorder)."""
    peer = Peer(spoilable.parent / "recorder.sock", svc.uid, records(0))
    os.chown(spoilable.state_dir, caller.uid if spoil == "owner_changed" else 0, svc.gid)
    proc = run([str(spoilable.launcher)])
    assert peer.close() == []
    if spoil == "owner_changed":
        assert proc.returncode == 0, proc.stderr
        assert spoilable.reported()
    else:
        refused(spoilable, proc)
