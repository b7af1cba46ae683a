"""Which team works a new alert: pure, over the routes and teams read when it is raised.

A rule names where its alerts go (``route`` in the rule pack): an area's team
(``housing:E08000035``), the receiving team of a referral (``leeds-housing:options``) or the
person's lead professional's team. Routes map those names to teams, most specific first:

1. the exact name (``housing:E08000035`` -> ``leeds-housing/options``);
2. its family (``housing:*``): every area of that service not routed on its own;
3. an ``<agency>:<team>`` name whose team exists (``leeds-housing/options``): a referral's
   receiving team and a lead professional's team need no route of their own;
4. the fallback team (``*``), so no alert is left unrouted.

Without a fallback route an alert stays unrouted (``None``) until the duty service's
sweep sends it to the fallback team once one is set (``services/alerts/desk.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

FALLBACK: Final = "*"


@dataclass(frozen=True, slots=True)
class Routing:
    """What routing reads: routes (name -> team id) and the teams that exist."""

    routes: Mapping[str, str]
    teams: Collection[str]

    @property
    def fallback(self) -> str | None:
        return self.routes.get(FALLBACK)

    def team_for(self, route: str) -> str | None:
        exact = self.routes.get(route)
        if exact is not None:
            return exact
        family, _, rest = route.partition(":")
        if rest:
            wide = self.routes.get(f"{family}:*")
            if wide is not None:
                return wide
            named = f"{family}/{rest}"
            if named in self.teams:
                return named
        return self.fallback


def route_is_valid(route: str) -> bool:
    """A route is ``*``, ``<family>:*`` or a name a rule can produce (no spaces, not empty)."""
    return bool(route) and len(route) <= 200 and not any(c.isspace() for c in route)
