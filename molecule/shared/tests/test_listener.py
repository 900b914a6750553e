# SPDX-License-Identifier: MIT
"""The optional local SMTP listener: an SMTP client on 127.0.0.1:25 and [::1]:25 gets its mail logged."""

import pytest
from conftest import SERVICE_USER, host_vars, token, wait_for_record

SMTP_CLIENT = """
import smtplib, sys
with smtplib.SMTP(sys.argv[1], 25, timeout=20) as smtp:
    smtp.sendmail("app@example.org", ["ops@example.org"], f"Subject: {sys.argv[2]}\\r\\n\\r\\nhello\\r\\n")
"""


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_smtp_client_on_localhost_gets_its_mail_logged(shim_host, address):
    if not host_vars(shim_host).get("sendmail_shim_listener_enabled"):
        pytest.skip("the listener is off in this scenario")
    subject = token("listener")
    shim_host.check_output(f"python3 -c '{SMTP_CLIENT}' {address} {subject}")
    record = wait_for_record(shim_host, subject, timeout=15)
    assert record["sendmail_shim"]["envelope"]["sender"] == "app@example.org"
    assert record["sendmail_shim"]["envelope"]["recipients"] == ["ops@example.org"]
    assert record["user"]["name"] == SERVICE_USER
