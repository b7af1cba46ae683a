"""Deterministic synthetic population (`joinedup simulate`): people facing multiple
disadvantage, the agencies that work with them, and the transitions between them."""

from services.simulation.agencies import AGENCIES, Agency
from services.simulation.arrival import shuffle_across_agencies
from services.simulation.population import simulate

__all__ = ["AGENCIES", "Agency", "shuffle_across_agencies", "simulate"]
