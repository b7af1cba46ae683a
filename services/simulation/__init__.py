"""Deterministic synthetic population (`joinedup simulate`): people facing multiple
disadvantage, the agencies that work with them, and the transitions between them.

- ``simulate(seed, people, months, start)``: the whole stream, sorted by recorded_at;
- ``shuffle_across_agencies(events, rng)``: another arrival order, each agency's kept;
- ``scenario(name, start)``: a hand-written story of one person, for the demo.
"""

from services.simulation.agencies import AGENCIES, Agency
from services.simulation.arrival import shuffle_across_agencies
from services.simulation.population import simulate
from services.simulation.scenario import SCENARIOS, scenario

__all__ = ["AGENCIES", "SCENARIOS", "Agency", "scenario", "shuffle_across_agencies", "simulate"]
