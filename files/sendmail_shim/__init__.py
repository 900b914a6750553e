"""sendmail-shim: a sendmail that keeps each message as one JSON line in a log."""

# Read by the role's mta_facts module (by regex, without importing) to report what a host runs.
__version__ = "1.1.0"
