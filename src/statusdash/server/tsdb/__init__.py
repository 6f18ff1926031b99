"""Per-host time-series storage: chunked columns of scaled integers (see docs/history.md)."""
