"""Structured logging: our own lines and kopf's, one rendered line per record."""

import logging
import sys
from typing import Any

import structlog

FORMATS = ("json", "console")


def default_format() -> str:
    return "console" if sys.stdout.isatty() else "json"


def _kopf_object_ref(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """kopf's per-object logger passes the object in the `k8s_ref` extra; keep only who it is."""
    record = event_dict.get("_record")
    ref = getattr(record, "k8s_ref", None)
    if isinstance(ref, dict):
        if ref.get("namespace"):
            event_dict.setdefault("namespace", ref["namespace"])
        if ref.get("name"):
            event_dict.setdefault("deployment" if ref.get("kind") == "Deployment" else "name", ref["name"])
    return event_dict


def configure(fmt: str, level: str = "INFO") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _kopf_object_ref],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log and urllib3's retry chatter repeat what our own lines say.
    for noisy in ("aiohttp.access", "urllib3"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.ERROR))
    # kopf says "Handler ... succeeded" for every watch event; our decisions have lines of their own.
    logging.getLogger("kopf.objects").setLevel(max(root.level, logging.WARNING))

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get(name: str = "autorollback") -> Any:
    return structlog.stdlib.get_logger(name)
