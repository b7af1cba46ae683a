"""A uvicorn server run in a thread with its own event loop, as a deployed one runs, for the
tests that call an HTTP service over a real socket."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn


@contextmanager
def serving(server: uvicorn.Server, name: str, port: int) -> Iterator[str]:
    """Start ``server`` (on ``port``), yield its base URL, stop it on exit."""
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the {name} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
