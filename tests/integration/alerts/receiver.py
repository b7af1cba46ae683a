"""A webhook receiver for the tests: a Starlette app under uvicorn on a free port, with one
URL per hook, each answering the statuses it is given in turn and keeping what it got."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.stack.ports import free_port
from tests.servers import serving


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, object]:
        decoded = json.loads(self.body)
        assert isinstance(decoded, dict)
        return decoded

    @property
    def data(self) -> dict[str, object]:
        data = self.event["data"]
        assert isinstance(data, dict)
        return data


@dataclass
class Hook:
    """One endpoint of the receiver: answers given in turn, then ``always``."""

    url: str
    answers: list[tuple[int, dict[str, str]]]
    always: tuple[int, dict[str, str]] = (204, {})
    received: list[Received] = field(default_factory=list)


class Receiver:
    def __init__(self) -> None:
        self.base = ""
        self.hooks: dict[str, Hook] = {}
        self.app = Starlette(routes=[Route("/hooks/{name}", self._handle, methods=["POST"])])

    def hook(self, *answers: int | tuple[int, dict[str, str]], always: int = 204) -> Hook:
        name = uuid.uuid4().hex
        made = Hook(f"{self.base}/hooks/{name}",
                    [a if isinstance(a, tuple) else (a, {}) for a in answers], (always, {}))
        self.hooks[name] = made
        return made

    async def _handle(self, request: Request) -> Response:
        hook = self.hooks[request.path_params["name"]]
        hook.received.append(Received(dict(request.headers), await request.body()))
        status, headers = hook.answers.pop(0) if hook.answers else hook.always
        return Response(status_code=status, headers=headers)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    port = free_port()
    config = uvicorn.Config(made.app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="off", log_config=None)
    with serving(uvicorn.Server(config), "webhook receiver", port) as url:
        made.base = url
        yield made
