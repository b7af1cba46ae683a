"""Reading and checking the rule file, at start-up, so a bad rule never reaches the stream.

Every problem names the file, its line (best effort: TOML parsers do not keep positions, so
we look for the rule's ``id`` line and then the key), the rule id, the field path and the
reason. All problems are reported at once, so one edit-and-restart cycle fixes them all.
"""

from __future__ import annotations

import re
import string
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from services.common.events import SENSITIVITIES
from services.processor.domain.rules.model import (
    LEAD_PROFESSIONAL,
    ROUTE_FIELDS,
    RULE_KINDS,
    SEVERITIES,
    Condition,
    Context,
    Matcher,
    Pair,
    Rule,
    RulePack,
    Window,
)
from services.processor.domain.rules.vocabulary import field_problem, values_problem

_DURATION = re.compile(r"^(\d+)(m|h|d|w)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TOP = {"version", "resolve_late_within", "late_arrival_grace", "description", "rules"}
_RULE = {"id", "kind", "category", "version", "title", "explanation", "source", "severity",
         "route",
         "expected", "trigger", "expect", "window", "cancel", "pair", "context"}
_NEEDS = {"deadline": ("expect", "window"), "immediate": (), "pair": ("pair",),
          "context": ("context",)}
_MATCHER = {"event_type", "where"}
_WINDOW = {"within", "working_days", "working_days_field", "before", "of", "lookback"}
_PAIR = {"within", "cross", "differ"}
_OPS = {"equals", "in", "not_in", "is"}


class RuleFileError(ValueError):
    """The rule file is refused; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def default_pack_path() -> Path:
    return Path(__file__).resolve().parents[2] / "rules" / "pack.toml"


def load_rule_pack(text_or_path: str | Path) -> RulePack:
    """Parse and check a rule pack given as a path or as TOML text."""
    if isinstance(text_or_path, Path) or not ("\n" in text_or_path or "=" in text_or_path):
        path = Path(text_or_path)
        return _Checker(path.read_text(encoding="utf-8"), path.name).pack()
    return _Checker(text_or_path, "<rule text>").pack()


class _Checker:
    def __init__(self, text: str, name: str) -> None:
        self.text, self.name, self.problems = text, name, []  # type: ignore[var-annotated]
        self.lines = text.splitlines()
        self.rule_id: str | None = None
        self.seen_ids: dict[str, int] = {}  # how many rules so far had each id (duplicates)

    def pack(self) -> RulePack:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            raise RuleFileError([f"{self.name}: not valid TOML ({exc})"]) from None
        self._unknown(data, _TOP, "")
        version = data.get("version")
        if not isinstance(version, str) or not version:
            self.fail("version", "the pack needs a version string like '2026.11.1'")
            version = "?"
        rules, seen = [], set()
        for raw in data.get("rules") or []:
            rule = self._rule(raw, version)
            if rule is not None and rule.id in seen:
                self.fail("id", "duplicate rule id")
            elif rule is not None:
                seen.add(rule.id)
                rules.append(rule)
        self.rule_id = None
        if not data.get("rules"):
            self.fail("rules", "the pack has no rules")
        pack = RulePack(version, tuple(rules),
                        self._span(data, "resolve_late_within", "", timedelta(days=365)),
                        self._span(data, "late_arrival_grace", "", timedelta(days=30)))
        if self.problems:
            raise RuleFileError(self.problems)
        return pack

    # --- reporting --------------------------------------------------------------------------

    def fail(self, path: str, reason: str) -> None:
        where = f"{self.name} line {self._line(path)}"
        if self.rule_id is not None:
            where += f", rule '{self.rule_id}'"
        self.problems.append(f"{where}, field {path}: {reason}")

    def _line(self, path: str) -> int:
        start, end = 0, len(self.lines)
        if self.rule_id is not None:
            pattern = re.compile(rf"^\s*id\s*=\s*[\"']{re.escape(self.rule_id)}[\"']")
            starts = [i for i, ln in enumerate(self.lines) if pattern.match(ln)] or [0]
            start = starts[min(self.seen_ids.get(self.rule_id, 1), len(starts)) - 1]
            end = next((i for i in range(start + 1, len(self.lines))
                        if self.lines[i].strip().startswith("[[rules]]")), len(self.lines))
        key = path.split(".")[-1].split("[")[0]
        for i in range(start, end):
            if re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=|^\s*\[+.*\b{re.escape(key)}\]",
                        self.lines[i]):
                return i + 1
        return start + 1

    def _unknown(self, table: dict[str, Any], allowed: set[str], prefix: str) -> None:
        for key in sorted(set(table) - allowed):
            self.fail(prefix + key, f"unknown key (expected one of {', '.join(sorted(allowed))})")

    # --- pieces -----------------------------------------------------------------------------

    def _rule(self, raw: dict[str, Any], pack_version: str) -> Rule | None:
        rule_id = raw.get("id")
        self.rule_id = rule_id if isinstance(rule_id, str) else None
        if self.rule_id is not None:
            self.seen_ids[self.rule_id] = self.seen_ids.get(self.rule_id, 0) + 1
        if not isinstance(rule_id, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", rule_id):
            self.fail("id", "every rule needs an id of lower-case letters, digits and '-'")
            return None
        self._unknown(raw, _RULE, "")
        kind = raw.get("kind")
        if kind not in RULE_KINDS:
            self.fail("kind", f"must be one of {', '.join(RULE_KINDS)}")
            return None
        for key in ("title", "source", "severity", "route", "explanation", "expected"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                self.fail(key, "is missing (a non-empty string is required)")
        if raw.get("severity") not in (None, *SEVERITIES):
            self.fail("severity", f"must be one of {', '.join(SEVERITIES)}")
        if raw.get("category") not in SENSITIVITIES:
            self.fail("category", f"is required, one of {', '.join(SENSITIVITIES)} (what an "
                                  "alert of the rule reveals about the person)")
        self._route(raw.get("route"))
        for key in ("expect", "window", "cancel", "pair", "context"):
            if key in raw and key not in _NEEDS[kind] and key != "cancel":
                self.fail(key, f"does not apply to a {kind} rule")
        for key in _NEEDS[kind]:
            if key not in raw:
                self.fail(key, f"a {kind} rule needs a [{key}] section")
        trigger = self._matcher(raw.get("trigger"), "trigger", None)
        families = {t.split(".")[0] for t in trigger.event_types}
        expect = self._matcher(raw["expect"], "expect", families) if "expect" in raw else None
        cancel = self._matcher(raw["cancel"], "cancel", families) if "cancel" in raw else None
        window = self._window(raw["window"], families) if "window" in raw else None
        pair = self._pair(raw["pair"], families) if "pair" in raw else None
        contexts = tuple(self._context(c, f"context[{i}]")
                         for i, c in enumerate(raw.get("context") or []))
        return Rule(rule_id, kind, str(raw.get("version") or pack_version), raw.get("title", ""),
                    raw.get("explanation", ""), raw.get("source", ""), raw.get("severity", ""),
                    raw.get("route", ""), raw.get("expected", ""), trigger, expect, window,
                    cancel, pair, contexts, str(raw.get("category") or ""))

    def _route(self, route: object) -> None:
        if not isinstance(route, str) or route == LEAD_PROFESSIONAL:
            return
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(route) if name is not None]
        except ValueError as exc:
            self.fail("route", f"is not a valid template ({exc})")
            return
        for name in names:
            if name not in ROUTE_FIELDS:
                self.fail("route", f"unknown placeholder {{{name}}} (use "
                          + ", ".join(f"{{{f}}}" for f in ROUTE_FIELDS) + ")")

    def _matcher(self, raw: Any, path: str, trigger_families: set[str] | None,
                 extra: frozenset[str] = frozenset()) -> Matcher:
        if not isinstance(raw, dict):
            self.fail(path, "must be a table with event_type and optional where")
            return Matcher(frozenset())
        allowed = _MATCHER | extra | ({"same"} if trigger_families is not None else set())
        self._unknown(raw, allowed, f"{path}.")
        types = raw.get("event_type")
        types = [types] if isinstance(types, str) else types
        if not types or not isinstance(types, list):
            self.fail(f"{path}.event_type", "is missing (an event type or a list of them)")
            types = []
        for problem in values_problem("event_type", set(), types):
            self.fail(f"{path}.event_type", problem)
        families = {t.split(".")[0] for t in types if isinstance(t, str)}
        conditions = []
        for field_path, spec in (raw.get("where") or {}).items():
            condition = self._condition(f"{path}.where.{field_path}", field_path, spec, families)
            if condition is not None:
                conditions.append(condition)
        same = raw.get("same") or []
        for field_path in same:
            for fams in (families, trigger_families or set()):
                if (unreadable := field_problem(field_path, fams)) is not None:
                    self.fail(f"{path}.same", unreadable)
        return Matcher(frozenset(types), tuple(conditions), tuple(same))

    def _condition(self, path: str, field_path: str, spec: Any, families: set[str]) \
            -> Condition | None:
        if (problem := field_problem(field_path, families)) is not None:
            self.fail(path, problem)
            return None
        if isinstance(spec, dict):
            if len(spec) != 1 or next(iter(spec)) not in _OPS:
                self.fail(path, "a condition table has exactly one of equals, in, not_in, is")
                return None
            op, value = next(iter(spec.items()))
        else:
            op, value = ("in" if isinstance(spec, list) else "equals"), spec
        op = "equals" if op == "is" else op
        if op in ("in", "not_in") and not isinstance(value, list):
            self.fail(path, f"'{op}' needs a list of values")
            return None
        values = value if isinstance(value, list) else [value]
        for problem in values_problem(field_path, families, values):
            self.fail(path, problem)
        return Condition(field_path, op, tuple(value) if isinstance(value, list) else value)

    def _window(self, raw: dict[str, Any], families: set[str]) -> Window:
        self._unknown(raw, _WINDOW, "window.")
        within = self._duration(raw, "within", "window.", None)
        before = self._duration(raw, "before", "window.", None)
        days = raw.get("working_days")
        if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 1):
            self.fail("window.working_days", "must be a whole number of days, at least 1")
        if sum(key in raw for key in ("within", "working_days", "before")) != 1:
            self.fail("window", "needs exactly one of within, working_days, before")
        if before is not None and "of" not in raw:
            self.fail("window.of", "'before' needs 'of', the date field it counts back from")
        for key in ("of", "working_days_field"):
            if key in raw and (problem := field_problem(raw[key], families)) is not None:
                self.fail(f"window.{key}", problem)
        return Window(within, days, raw.get("working_days_field"), before, raw.get("of"),
                      self._span(raw, "lookback", "window.", timedelta(0)))

    def _pair(self, raw: dict[str, Any], families: set[str]) -> Pair:
        self._unknown(raw, _PAIR, "pair.")
        cross = raw.get("cross") or []
        if not cross or not all(isinstance(c, list) and len(c) == 2 for c in cross):
            self.fail("pair.cross", "needs a list of [field, field] pairs")
            cross = []
        for field_path in [p for c in cross for p in c] + list(raw.get("differ") or []):
            if (problem := field_problem(field_path, families)) is not None:
                self.fail("pair.cross", problem)
        within = self._duration(raw, "within", "pair.", None)
        if within is None:
            self.fail("pair.within", "is missing (a duration like '90d')")
        return Pair(within or timedelta(0), tuple(tuple(c) for c in cross),  # type: ignore[misc]
                    tuple(raw.get("differ") or []))

    def _context(self, raw: dict[str, Any], path: str) -> Context:
        matcher = self._matcher(raw, path, None, frozenset({"within"}))
        within = self._duration(raw, "within", f"{path}.", None)
        if within is None:
            self.fail(f"{path}.within", "is missing (a duration like '28d')")
        return Context(matcher, within or timedelta(0))

    def _duration(self, raw: dict[str, Any], key: str, prefix: str,
                  default: timedelta | None) -> timedelta | None:
        if key not in raw:
            return default
        match = _DURATION.match(str(raw[key]).strip())
        if not isinstance(raw[key], str) or match is None:
            self.fail(prefix + key, f"{raw[key]!r} is not a duration like '72h' or '5d'")
            return default
        return timedelta(**{_UNITS[match[2]]: int(match[1])})

    def _span(self, raw: dict[str, Any], key: str, prefix: str, default: timedelta) -> timedelta:
        value = self._duration(raw, key, prefix, default)
        return default if value is None else value
