"""`joinedup rebuild` refuses bad arguments with a clear message, before touching anything."""

from __future__ import annotations

import pytest

from services.operations.cli import main


@pytest.mark.parametrize(("args", "message"), [
    (["--read-models", "timeline,nothing", "--check"], "no read model named 'nothing'"),
    (["--shadow", "Bad-Name", "--check"], "not a plain SQL identifier"),
    (["--shadow", "joinedup", "--check"], "must not be the live one"),
])
def test_bad_arguments_are_refused_with_the_reason(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rebuild", *args]) == 2
    assert message in capsys.readouterr().err
