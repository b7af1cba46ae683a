"""`joinedup up`'s supervisor: a child that dies is started again; one that refused its
configuration stops the stack."""

from __future__ import annotations

import time

import pytest

from services.common.backoff import Backoff
from services.operations.supervisor import Child, ConfigurationRefused, Supervisor


class FakeProcess:
    def __init__(self) -> None:
        self.starts = 0
        self.code: int | None = None

    def start(self) -> None:
        self.starts += 1
        self.code = None

    def alive(self) -> bool:
        return self.code is None

    def exit_code(self) -> int | None:
        return self.code


def child(process: FakeProcess, name: str = "joinedup worker", **kw: object) -> Child:
    return Child(name, process.start, process.alive, process.exit_code,
                 backoff=Backoff(0.01, 0.02), **kw)  # type: ignore[arg-type]


def until(condition, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.005)


def test_a_crashed_child_is_started_again_and_the_others_keep_running() -> None:
    worker, api = FakeProcess(), FakeProcess()
    worker.start(), api.start()
    restarted: list[str] = []
    supervisor = Supervisor([child(worker, after_restart=lambda: restarted.append("worker")),
                             child(api, "joinedup api")])
    worker.code = -9  # SIGKILL
    supervisor.check()
    assert worker.starts == 1  # not at once: after its backoff
    until(lambda: (supervisor.check(), worker.starts == 2)[1])
    assert api.starts == 1 and worker.alive() and restarted == ["worker"]
    assert supervisor.children[0].restarts == 1


def test_a_child_that_refused_its_configuration_stops_the_stack() -> None:
    worker = FakeProcess()
    worker.start()
    supervisor = Supervisor([child(worker)])
    worker.code = 2
    with pytest.raises(ConfigurationRefused, match="joinedup worker refused"):
        supervisor.check()


def test_a_child_that_fails_to_start_is_retried() -> None:
    attempts: list[int] = []

    def flaky_start() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError("port still in use")
        process.code = None

    process = FakeProcess()
    process.code = 1
    supervisor = Supervisor([Child("Tansu broker", flaky_start, process.alive,
                                   process.exit_code, backoff=Backoff(0.01, 0.02))])
    until(lambda: (supervisor.check(), process.alive())[1])
    assert len(attempts) == 3
