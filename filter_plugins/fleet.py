# SPDX-License-Identifier: MIT
"""fleet_table: the hosts' `sendmail-shim report --json` outputs ({host: output}) merged into the fleet
table by kind, on the controller, with the same code as `sendmail-shim report --fleet` (the collection's
module_utils, so an installed collection needs nothing of the checkout)."""

import io

from ansible.errors import AnsibleFilterError

# By FQCN, not relative: ansible-lint also loads this file from filter_plugins/, outside the collection.
from ansible_collections.mailshim.sendmail_shim.plugins.module_utils.sendmail_shim_fleet import (
    fleet,
    fleet_table,
)


def fleet_report(docs, top=15):
    """The table as text: the top rows by count, the rest counted as other."""
    if not isinstance(docs, dict):
        raise AnsibleFilterError(f"fleet_table takes a mapping of host to report, not {type(docs).__name__}")
    try:
        merged = fleet(dict(docs), top=int(top))
    except ValueError as exc:
        raise AnsibleFilterError(f"fleet_table: a host's report is not JSON: {exc}") from exc
    out = io.StringIO()
    fleet_table(merged, out)
    return out.getvalue()


class FilterModule:
    def filters(self):
        return {"fleet_table": fleet_report}
