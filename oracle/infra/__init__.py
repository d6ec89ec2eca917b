"""Plumbing the long-running services stand on: the HTTP server, the SQLite state file,
JSON-line logs and the counters behind ``/metrics``. Knows nothing of jobs, chains or verdicts."""
