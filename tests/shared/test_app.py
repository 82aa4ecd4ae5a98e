"""`shared.app.add_routes`: a router's routes become the app's own, matched once per request."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shared.app import add_routes


async def test_a_routers_routes_are_the_apps_own_with_their_prefix_and_documented() -> None:
    router = APIRouter(prefix="/v1", tags=["cases"])

    @router.get("/cases/{case_id}")
    async def case(case_id: int) -> dict[str, int]:
        return {"case_id": case_id}

    app = FastAPI()
    add_routes(app, router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        found = await client.get("/v1/cases/7")
        wrong_method = await client.post("/v1/cases/7")
        elsewhere = await client.get("/cases/7")
    assert (found.status_code, found.json()) == (200, {"case_id": 7})
    assert wrong_method.status_code == 405
    assert elsewhere.status_code == 404
    assert app.openapi()["paths"]["/v1/cases/{case_id}"]["get"]["tags"] == ["cases"]


def test_a_router_with_more_than_routes_is_refused_rather_than_losing_it() -> None:
    async def ping(request: object) -> PlainTextResponse:
        return PlainTextResponse("pong")

    async def started() -> None:
        return None

    with_plain_route = APIRouter(prefix="/plain")
    with_plain_route.routes.append(Route("/plain/ping", ping))
    with_startup = APIRouter(prefix="/events", on_startup=[started])
    for router in (with_plain_route, with_startup):
        with pytest.raises(TypeError, match="routers of routes only"):
            add_routes(FastAPI(), router)
