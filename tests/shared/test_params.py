"""`shared.params.DirectRoute` and `read`: a hot route FastAPI calls with the request as it is, still documented."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel

from shared import params


class Asked(BaseModel):
    code: str
    times: int = 1


async def echo(request: Request) -> Response:
    asked = params.read(Asked, request)
    return Response(f"{asked.code}×{asked.times}", media_type="text/plain")


async def test_a_direct_route_gets_its_path_and_query_and_is_documented() -> None:
    app = FastAPI()
    app.router.add_api_route(
        "/echo/{code}",
        echo,
        methods=["GET"],
        openapi_extra=params.documented(Asked, path=("code",), language=False),
        route_class_override=params.DirectRoute,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answer = await client.get("/echo/K7QM", params={"times": "3"})
        refused = await client.get("/echo/K7QM", params={"times": "many"})
    assert (answer.status_code, answer.text) == (200, "K7QM×3")
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "times"]
    documented = app.openapi()["paths"]["/echo/{code}"]["get"]["parameters"]
    assert [(p["name"], p["in"]) for p in documented] == [("code", "path"), ("times", "query")]


async def _guard() -> None:
    return None


def test_a_direct_route_refuses_an_endpoint_or_router_that_would_have_dependencies_skipped() -> None:
    async def with_query(request: Request, times: int = 1) -> Response:
        return Response()

    guarded = APIRouter(dependencies=[Depends(_guard)])
    with pytest.raises(TypeError, match="takes the Request only"):
        guarded.add_api_route("/x", echo, methods=["GET"], route_class_override=params.DirectRoute)
    with pytest.raises(TypeError, match="takes the Request only"):
        APIRouter().add_api_route("/y", with_query, methods=["GET"], route_class_override=params.DirectRoute)
