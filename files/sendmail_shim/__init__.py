# SPDX-License-Identifier: MIT
"""sendmail-shim: a sendmail that keeps each message as one JSON line in a log."""

# The one version source: scripts/build-package.sh (the package's version and changelog) and the role's
# mta_facts module read it by regex, without importing. Keep it on one line in this form.
__version__ = "1.1.0"
