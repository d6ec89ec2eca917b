"""Plumbing the long-running services stand on: the HTTP server, the SQLite state file and
JSON-line logs. Knows nothing of jobs, chains or verdicts."""
