# SPDX-License-Identifier: MIT
"""Reading the message: the lone-dot rule, the size cap, bounded memory."""

import hashlib
import os
import subprocess
import threading

import pytest
from sendmail_shim import message
from shimtest import ENTRY, PYTHON


def read(data, dot_ends=True, cap=1 << 20):
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, data), os.close(w)))
    writer.start()
    sink = message.Sink(cap)
    try:
        message.read(r, sink, dot_ends)
    finally:
        writer.join()
        os.close(r)
    return sink


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        (b"a\n.\nafter\n", b"a\n"),
        (b"a\r\n.\r\nafter\r\n", b"a\r\n"),
        (b".\nall of it after\n", b""),
        (b"a\n.", b"a\n"),
        (b"a\n..\nb\n", b"a\n..\nb\n"),  # not unstuffed outside SMTP: the bytes are kept as given
        (b"a\n. \nb\n", b"a\n. \nb\n"),
        (b"a.\nb\n", b"a.\nb\n"),
        (b"no newline at all", b"no newline at all"),
    ],
)
def test_lone_dot_ends_the_message_without_i(data, kept):
    sink = read(data, dot_ends=True)
    assert bytes(sink.kept) == kept
    assert sink.total == len(kept)


@pytest.mark.parametrize("data", [b"a\n.\nafter\n", b".\n", b"a\r\n.\r\nb"])
def test_with_i_a_lone_dot_is_just_a_line(data):
    sink = read(data, dot_ends=False)
    assert bytes(sink.kept) == data


def test_lone_dot_across_read_chunks():
    data = b"x" * (message.CHUNK - 2) + b"\n.\r\nrest"
    assert bytes(read(data).kept) == b"x" * (message.CHUNK - 2) + b"\n"


def test_cap_keeps_a_prefix_and_counts_and_hashes_everything():
    data = bytes(range(256)) * 1000
    sink = read(data, dot_ends=False, cap=1000)
    assert bytes(sink.kept) == data[:1000]
    assert sink.total == len(data)
    assert sink.truncated
    assert sink.hexdigest() == hashlib.sha256(data).hexdigest()


def test_lone_dot_through_the_real_shim(shim):
    result = shim.run("root", stdin=b"Subject: x\n\nbody\n.\nnot part of it\n")
    assert result.returncode == 0, result.stderr
    assert shim.record()["message"] == "Subject: x\n\nbody\n"
    result = shim.run("-oi", "root", stdin=b"Subject: x\n\nbody\n.\nstill part of it\n")
    assert shim.records()[-1]["message"].endswith(".\nstill part of it\n")


@pytest.mark.exec_only(reason="the exec'd shim's peak RSS; the recorder's is a bench figure")
def test_200_mib_in_bounded_memory(shim):
    """A 200 MiB message streams through: 8 MiB kept, all counted, peak RSS stays small."""
    block = (b"y" * 1023 + b"\n") * 1024
    code = (
        "import resource, subprocess, sys\n"
        "p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE)\n"
        f"block = {block[:1024]!r} * 1024\n"
        "for _ in range(200):\n"
        "    p.stdin.write(block)\n"
        "p.stdin.close()\n"
        "rc = p.wait()\n"
        "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run(
        [PYTHON, "-c", code, PYTHON, "-I", "-S", str(ENTRY), "-i", "root"],
        capture_output=True,
        env=shim.env(),
        timeout=120,
    )
    rc, max_rss_kib = map(int, result.stdout.split())
    assert rc == 0, result.stderr
    assert max_rss_kib < 64 * 1024
    rec = shim.record()
    kept = rec["sendmail_shim"]["message"]
    assert kept["bytes"] == 200 * len(block)
    assert kept["kept_bytes"] == 8 * 1024 * 1024
    assert kept["truncated"] is True
    assert len(rec["message"]) == 8 * 1024 * 1024
