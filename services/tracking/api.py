"""tracking's JSON API: the public lookup by tracking code."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from services.tracking.lookup import lookup
from services.tracking.schemas import TrackingView
from shared.http import Lang

router = APIRouter(prefix="/v1")


@router.get("/track/{code}", response_model=TrackingView)
async def track(
    request: Request,
    code: Annotated[str, Path(max_length=64, description="the tracking code, dashes optional, any case")],
    lang: Lang,
    min_version: Annotated[
        int,
        Query(
            ge=1,
            le=1_000_000,
            description="wait until the case reached this version (the `version` a write answered with)",
        ),
    ] = 1,
) -> TrackingView:
    return await lookup(request=request, code=code, lang=lang, min_version=min_version)
