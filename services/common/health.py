"""What a process knows about its own health, for `/readyz` and the logs.

Each component (the database, an intake, the deadline timer...) reports itself up or down with
a short reason; the process is ready when every component that has reported is up. Reasons
name components and error types, never data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    up: bool
    detail: str
    since: float  # time.time() of the last change


class Health:
    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def up(self, component: str, detail: str = "ok") -> None:
        self._set(component, True, detail)

    def down(self, component: str, detail: str) -> None:
        self._set(component, False, detail)

    def _set(self, component: str, up: bool, detail: str) -> None:
        current = self._checks.get(component)
        if current is None or current.up != up or current.detail != detail:
            since = current.since if current is not None and current.up == up else time.time()
            self._checks[component] = Check(up, detail, since)

    def ready_component(self, component: str) -> bool:
        """True unless the component has reported itself down (so a caller logs a change of
        state once, not on every retry)."""
        check = self._checks.get(component)
        return check is None or check.up

    @property
    def ready(self) -> bool:
        return bool(self._checks) and all(c.up for c in self._checks.values())

    def report(self) -> dict[str, dict[str, object]]:
        return {name: {"up": c.up, "detail": c.detail, "since": round(c.since, 3)}
                for name, c in sorted(self._checks.items())}
