"""JSON log lines on stderr; `extra` fields (uid, namespace, ...) become top-level keys."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from webhook.registry import redact_text

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _Redacted(logging.Filter):
    """URLs with userinfo or presigned query strings, Authorization values: cut out."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_text(record.getMessage()), None
        return True


# httpx logs every request's full URL at INFO (presigned blob URLs, userinfo): what the
# registry client has to say it logs itself, redacted; these two speak only of trouble.
_HTTP_LOGGERS = ("httpx", "httpcore")


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if not any(isinstance(f, _Redacted) for f in logger.filters):
            logger.addFilter(_Redacted())
