# SPDX-License-Identifier: MIT
"""Log lines of either layout, written the way the shim writes them."""

import json


def ecs(stamp, subject, *, host="web01", user="root", parent="cron", kind_id=None):
    """A minimal ecs record; without kind_id the reader computes the kind (as for older records)."""
    record = {
        "@timestamp": stamp,
        "event": {"id": "x"},
        "host": {"hostname": host},
        "user": {"id": "0", "name": user},
        "process": {"parent": {"name": parent}},
        "email": {"subject": subject},
        "message": f"Subject: {subject}\n\nbody\n",
    }
    if kind_id:
        record["sendmail_shim"] = {"kind": {"id": kind_id, "template": subject}}
    return json.dumps(record)


def classic(stamp, subject, *, uid="1000", username="alice"):
    return json.dumps(
        {
            "time": stamp,
            "uid": uid,
            "username": username,
            "arguments": ["-t"],
            "body": f"Subject: {subject}\n\nx\n",
        }
    )
