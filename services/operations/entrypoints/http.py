"""The operations routes of the read API (`/v1/operations/...`): for operations staff only.

Signed in like any practitioner (`POST /v1/sign-in`), with the role ``operations``; any other
caller is refused 403. Each feature adds its own router module here and one line to
``ROUTERS``; every route that shows or changes anything records it in the access audit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends

from services.operations.entrypoints.dead_letters import dead_letter_routes
from services.operations.entrypoints.people import people_routes
from services.operations.entrypoints.what_if import what_if_routes
from services.reads.domain.audit import Caller
from services.reads.entrypoints.http import caller
from services.reads.lookup import ReadRefused

#: The role an operator's account holds (`joinedup practitioner create --role operations`).
OPERATIONS_ROLE = "operations"


async def operator(who: Annotated[Caller, Depends(caller)]) -> Caller:
    """The caller, if they are operations staff."""
    if who.reader.role != OPERATIONS_ROLE:
        raise ReadRefused("forbidden", "for operations staff only")
    return who


Operator = Annotated[Caller, Depends(operator)]

#: Each returns the router of one feature (prefix ``/v1/operations``, tag ``operations``).
ROUTERS: list[Callable[[], APIRouter]] = [
    dead_letter_routes,
    what_if_routes,
    people_routes,
]


def operations_routes() -> list[APIRouter]:
    return [make() for make in ROUTERS]
