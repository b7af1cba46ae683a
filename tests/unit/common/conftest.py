"""A process's logging configured as a server's, for the tests that read its lines."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from services.common.logging import LIBRARY_LOGGERS, OWN_LOGGERS, configure_logging


@pytest.fixture
def process_log(tmp_path: Path) -> Iterator[Path]:
    """JSON lines into a file (not pytest's captured stderr, which the handler would outlive);
    what pytest had is put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in (*LIBRARY_LOGGERS, *OWN_LOGGERS)}
    hooks = sys.excepthook, threading.excepthook
    file = tmp_path / "process.log"
    try:
        configure_logging("INFO", json=True, file=file)
        yield file
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)
        logging.captureWarnings(False)
        structlog.reset_defaults()
        sys.excepthook, threading.excepthook = hooks
