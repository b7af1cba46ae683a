"""The `joinedup` command line: every option explained with its default, a version, and
every failure one line with a non-zero exit code, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from services.operations.cli import build_parser
from services.operations.parser import what_went_wrong


def every_action(parser: argparse.ArgumentParser, path: str = "joinedup"
                 ) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += every_action(child, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            found.append((path, action))
    return found


def test_every_argument_of_every_command_is_explained() -> None:
    unexplained = [(path, action.dest) for path, action in every_action(build_parser())
                   if not action.help]
    assert unexplained == []


def test_help_shows_the_defaults() -> None:
    rebuild = next(a for p, a in every_action(build_parser())
                   if p == "joinedup rebuild" and a.dest == "batch_size")
    formatter = build_parser()._subparsers._group_actions[0].choices["rebuild"]  # type: ignore[union-attr]
    assert "(default: 2000)" in formatter.format_help()
    assert rebuild.default == 2000


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.operations.cli", *args],
                          capture_output=True, text=True, timeout=60, env=env)


def test_version_and_usage_errors_are_one_line() -> None:
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("joinedup ")
    for args in (["rebuild", "--no-such-flag"], ["simulate", "--start", "next tuesday"],
                 ["simulate", "--people", "-3"], ["no-such-command"]):
        refused = run(*args)
        assert refused.returncode == 2, args
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("joinedup"), (args, refused.stderr)
        assert "--help" in lines[0]


def test_no_stack_and_a_missing_file_are_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "JOINEDUP_DATA_DIR": str(tmp_path / "nothing-here")}
    for command in (["duty", "route", "list"], ["read-api"], ["duty", "serve"], ["worker"],
                    ["rebuild", "--check"]):
        no_stack = run(*command, env=env)
        assert no_stack.returncode != 0 and "Traceback" not in no_stack.stderr, command
        assert len(no_stack.stderr.strip().splitlines()) == 1, (command, no_stack.stderr)
        assert "joinedup up" in no_stack.stderr
    missing = run("publish", str(tmp_path / "absent.jsonl"), env=env)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("error", "words"), [
    (FileNotFoundError(2, "No such file", "events.jsonl"), "no such file: events.jsonl"),
    (ConnectionRefusedError(111, "refused"), "is the stack running?"),
    (OSError(98, "Address already in use"), "the port is in use"),
    (RuntimeError("no servers configured: run `joinedup up`"), "no servers configured"),
    (ValueError("first line\nsecond line"), "ValueError: first line"),
])
def test_what_went_wrong_is_one_plain_line(error: Exception, words: str) -> None:
    said = what_went_wrong(error)
    assert words in said and "\n" not in said
