"""Structured logs: one JSON object per line, ``{"ts", "level", "logger", "event", ...}``.

Callers log ``event(log, "verdict", job=1, worker="0x…")``; nothing secret is ever passed
(keys and passwords never reach this module).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["JsonFormatter", "event", "setup_logging"]


class JsonFormatter(logging.Formatter):
    """Formats a record and its ``fields`` extra as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        body.update(getattr(record, "fields", {}))
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(body, default=str, sort_keys=False)


def event(log: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log event ``name`` with structured fields (bytes are shown as 0x-hex)."""
    clean = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in fields.items()}
    log.log(level, name, extra={"fields": clean})


def setup_logging(level: str = "info") -> None:
    """Send every pouw logger's records to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("pouw")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
