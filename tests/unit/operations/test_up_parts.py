"""`joinedup up` advertises a part only once it answers, and names the part that did not."""

from __future__ import annotations

import pytest

from services.operations.stack import Part, PartFailed, until_serving
from services.operations.supervisor import ProcessChild
from services.stack.ports import free_port


class Exited(ProcessChild):
    def __init__(self, code: int | None) -> None:
        super().__init__([], {})
        self.code = code

    def exit_code(self) -> int | None:
        return self.code


def test_a_part_that_exited_is_named_with_its_exit_status() -> None:
    part = Part("read API", "read-api", "127.0.0.1", free_port(), "/docs")
    with pytest.raises(PartFailed, match="the read API did not start") as failed:
        until_serving([part], [Exited(2)], timeout=5)
    assert failed.value.exit_code == 2


def test_a_part_that_never_answers_is_named_after_the_timeout() -> None:
    part = Part("duty board", "duty serve", "127.0.0.1", free_port(), "/")
    with pytest.raises(PartFailed, match="the duty board did not answer") as failed:
        until_serving([part], [Exited(None)], timeout=0.5)
    assert failed.value.exit_code is None
