"""tracking's JSON API: the public lookup by tracking code.

The lookup is the route a peak hits (every citizen refreshing their case): it reads its parameters in one
pydantic call and FastAPI calls it with the request as it is (`shared.params.DirectRoute`); it answers the
view's JSON as pydantic writes it, without FastAPI validating it a second time.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from services.tracking.lookup import lookup
from services.tracking.schemas import TrackingView
from shared import params
from shared.http import language_of

router = APIRouter(prefix="/v1")


class TrackParams(BaseModel):
    code: Annotated[str, Field(max_length=64, description="the tracking code, dashes optional, any case")]
    min_version: Annotated[
        int,
        Field(
            ge=1,
            le=1_000_000,
            description="wait until the case reached this version (the `version` a write answered with)",
        ),
    ] = 1


async def track(request: Request) -> Response:
    """A case, by its tracking code: its step, its history and what comes next."""
    asked = params.read(TrackParams, request)
    view = await lookup(
        request=request, code=asked.code, lang=language_of(request), min_version=asked.min_version
    )
    return Response(view.model_dump_json(), media_type="application/json")


router.add_api_route(
    "/track/{code}",
    track,
    methods=["GET"],
    response_model=TrackingView,
    openapi_extra=params.documented(TrackParams, path=("code",)),
    route_class_override=params.DirectRoute,
)
