"""sendmail-shim: a sendmail that keeps each message as one JSON line in a log."""
