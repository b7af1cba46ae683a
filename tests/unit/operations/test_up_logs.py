"""`joinedup up` keeps the terminal for its own messages: each child's output is appended to
its log file in the data directory, and the end of it is shown when a part did not start."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from services.operations.stack import (
    Part,
    PartFailed,
    command_child,
    last_lines,
    readable,
    until_serving,
)
from services.operations.supervisor import ProcessChild
from services.stack.local import StackAddresses
from services.stack.ports import free_port

SAYS = "import sys; print('out', flush=True); sys.stderr.write('err\\n'); sys.exit(3)"


def test_a_childs_stdout_and_stderr_are_appended_to_its_log(tmp_path: Path) -> None:
    child = ProcessChild([sys.executable, "-c", SAYS], {}, log=tmp_path / "api.log")
    for _ in range(2):  # started again after a crash: the earlier output is kept
        child.start()
        assert child.process is not None and child.process.wait(10) == 3
    assert (tmp_path / "api.log").read_text().split() == ["out", "err", "out", "err"]


def test_each_command_has_its_own_log_named_after_it(tmp_path: Path) -> None:
    addresses = StackAddresses("postgresql://x", "127.0.0.1:1", ())
    supervised, process = command_child(addresses, "duty serve", tmp_path)
    assert supervised.log == process.log == tmp_path / "duty-serve.log"
    assert command_child(addresses, "worker")[1].log is None  # no directory: the terminal


def test_a_part_that_did_not_start_points_at_the_end_of_its_log(tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    child = ProcessChild([sys.executable, "-c", SAYS], {}, log=log)
    child.start()
    assert child.process is not None
    child.process.wait(10)
    part = Part("ingest gateway", "api", "127.0.0.1", free_port(), "/docs")
    with pytest.raises(PartFailed, match=f"the ingest gateway did not start.*{log}") as failed:
        until_serving([part], [child], timeout=5)
    assert failed.value.log == log and last_lines(log) == ["out", "err"]
    assert last_lines(tmp_path / "missing.log") == []


def test_a_json_line_is_shown_as_a_person_reads_it() -> None:
    line = ('{"event": "address already in use", "level": "error", "logger": "uvicorn.error", '
            '"timestamp": "2026-12-06T11:33:59Z", "correlation_id": "x", '
            '"exception": "Traceback (most recent call last):\\n  ...\\nOSError: in use"}')
    assert readable(line) == "error uvicorn.error: address already in use (OSError: in use)"
    assert readable("joinedup api: port 8080 is in use") == "joinedup api: port 8080 is in use"
    assert readable("[1, 2]") == "[1, 2]"
