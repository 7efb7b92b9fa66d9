"""fed's log level, set in every process that does fed's work: the driver and its proxy actors."""

from __future__ import annotations

import logging


def setup(level: str | int) -> int:
    """Set the ``fed`` logger's level (``ValueError`` for an unknown one) and print its records to
    stderr unless logging is configured in this process already; returns the level as a number."""
    fed_logger = logging.getLogger("fed")
    try:
        fed_logger.setLevel(level.upper() if isinstance(level, str) else level)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid logging_level {level!r}: use debug, info, warning or error") from exc
    if not fed_logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        fed_logger.addHandler(handler)
    return fed_logger.level
