"""tracking's forms (the rating, "is it fixed?", the reply) forward to intake: sending, and what they make of
intake's answer."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import httpx
from fastapi import Request

from services.tracking.settings import TrackingSettings
from shared.ratelimit import client_of

log = logging.getLogger(__name__)
INTAKE_TIMEOUT_SECONDS = 5


async def post_to_intake(
    request: Request, path: str, *, json: dict[str, Any], lang: str, what: str
) -> httpx.Response | None:
    """intake's answer to a form's JSON (None if it cannot be reached), in the visitor's language; the
    citizen's address goes along for intake's per-client limits."""
    settings: TrackingSettings = request.app.state.settings
    http: httpx.AsyncClient = request.app.state.http
    try:
        return await http.post(
            f"{settings.intake_url.rstrip('/')}{path}",
            params={"lang": lang},
            json=json,
            headers={"X-Forwarded-For": client_of(request)},
            timeout=INTAKE_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        log.warning("intake cannot be reached for a %s: %s", what, type(exc).__name__)
        return None


def intake_problem(answer: httpx.Response | None, *, what: str) -> dict[str, Any] | None:
    """intake's problem for a 4xx (what the citizen can act on); None for anything else (unreachable,
    a fault on its side): then nothing was recorded, and the page says to try again."""
    if answer is None:
        return None
    body = None
    if 400 <= answer.status_code < 500:
        with contextlib.suppress(ValueError):  # not JSON: not intake's problem
            body = answer.json()
    if not isinstance(body, dict):
        log.warning("intake answered %d to a %s", answer.status_code, what)
        return None
    return body
