"""`POST /open311/v2/requests.json` on tracking: the form goes on to intake unchanged, which checks and
records the report (`services/intake/open311_requests.py`); intake's answer comes back as it is.

tracking owns the path because `GET requests.json` is its own and an ingress routes by path, not by
method. Nothing is recorded here: when intake cannot be reached, the 311 app is told to retry (503).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from fastapi import Request, Response

from services.tracking.settings import TrackingSettings
from shared.http import Lang
from shared.i18n import translate
from shared.open311_http import Open311Error, open311_router

log = logging.getLogger(__name__)
router = open311_router(tags=["open311"])
INTAKE_TIMEOUT_SECONDS = 15  # the address search may take a few seconds
# What goes on to intake, and what comes back, beside the body.
_SENT = ("content-type", "accept-language", "idempotency-key")
_RETURNED = ("content-type", "retry-after", "idempotent-replayed")

_TEXT = {"type": "string"}  # each checked by intake, against the procedure's own bounds
FORM: dict[str, Any] = {
    "type": "object",
    "required": ["api_key", "service_code"],
    "properties": {
        "api_key": {"type": "string", "description": "the 311 app's key, given by the city"},
        "service_code": {"type": "string", "description": "a `service_code` of `services.json`"},
        "lat": {"type": "number", "description": "WGS 84; with `long`, or give `address_string`"},
        "long": {"type": "number", "description": "WGS 84"},
        "address_string": {**_TEXT, "description": "a number and a street of the city"},
        "description": {**_TEXT, "description": "what was seen, since when, whether it is dangerous"},
        "media_url": {"type": "string", "format": "uri", "description": "a link to a photo (https)"},
        "first_name": _TEXT,
        "last_name": _TEXT,
        "email": {"type": "string", "description": "the e-mail or the phone is needed, to follow the report"},
        "phone": _TEXT,
        "device_id": _TEXT,
        "account_id": _TEXT,
        "jurisdiction_id": _TEXT,
    },
    "patternProperties": {r"^attribute\[[a-z][a-z0-9_]*\]$": _TEXT},
}
_POSTED = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["service_request_id"],
        "properties": {
            "service_request_id": {"type": "string"},
            "service_notice": {"type": "string"},
            "account_id": {"type": "null"},
        },
    },
}
_DOC = (
    "A report, form-encoded as the spec says (`attribute[code]=value` for a service definition's "
    "attributes), answered at once with its `service_request_id` (no token: `type: realtime`). The "
    "reporter's name and an e-mail or a phone are required; they stay with the city and are never shown."
)


def _openapi(xml: bool) -> dict[str, Any]:
    media = "application/xml" if xml else "application/json"
    body = {"type": "string"} if xml else _POSTED
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": FORM}},
        },
        "responses": {
            "200": {"description": "The report is recorded.", "content": {media: {"schema": body}}},
            "403": {"description": "No API key, or an unknown one."},
            "404": {"description": "No such service."},
        },
    }


async def _forward(request: Request, lang: str) -> Response:
    settings: TrackingSettings = request.app.state.settings
    http: httpx.AsyncClient = request.app.state.http
    headers = {k: v for k in _SENT if (v := request.headers.get(k)) is not None}
    try:
        answer = await http.post(
            f"{settings.intake_url.rstrip('/')}{request.url.path}",
            content=await request.body(),
            headers=headers,
            params=request.query_params,
            timeout=INTAKE_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        log.warning("intake cannot be reached for an Open311 report; nothing was recorded: %r", exc)
        detail = translate("error.service_unavailable", lang, detail="intake")
        raise Open311Error(503, [detail], headers={"Retry-After": "5"}) from exc
    returned = {k: v for k in _RETURNED if (v := answer.headers.get(k)) is not None}
    return Response(answer.content, status_code=answer.status_code, headers=returned)


@router.post("/requests.json", description=_DOC, openapi_extra=_openapi(xml=False))
async def post_request(request: Request, lang: Lang) -> Response:
    return await _forward(request, lang)


@router.post("/requests.xml", description=_DOC, openapi_extra=_openapi(xml=True))
async def post_request_xml(request: Request, lang: Lang) -> Response:
    return await _forward(request, lang)
