# SPDX-License-Identifier: MIT
"""The modules are imported as Ansible runs them from the collection: as
ansible_collections.mailshim.sendmail_shim.plugins.modules.NAME (the checkout's ansible_collections/ links
to library/ and module_utils/), so their relative imports of the collection's module_utils resolve.
"""

import importlib
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = "ansible_collections.mailshim.sendmail_shim.plugins.modules"

sys.path.insert(0, str(REPO))
for name in ("mta_facts", "sendmail_probe"):
    sys.modules[name] = importlib.import_module(f"{PACKAGE}.{name}")
