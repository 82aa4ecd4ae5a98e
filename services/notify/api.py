"""notify's HTTP routes: a case's notifications for the agents (internal API, read by workflow's case
view), the link in each message that stops a case's messages, and the SMS provider's delivery reports.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from services.notify.sender import case_of_stop_token
from services.notify.settings import NotifySettings
from shared.deps import InternalCaller
from shared.http import ApiError, Lang
from shared.pages import Texts, page_templates

log = logging.getLogger(__name__)
router = APIRouter()
_pages = page_templates(Path(__file__).parent / "pages")


class MessageInternal(BaseModel):
    message_id: uuid.UUID | None = Field(description="none when no message was made (see `state`)")
    kind: str
    channel: str | None
    status: str = Field(
        description="created, sending, sent, delivered, temporary-failure, "
        "permanent-failure; or the notification's state when no message was made: pending, "
        "opted-out, no-contact, erased (the citizen's personal data was erased before it was sent)"
    )
    reason: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


class CaseNotificationsInternal(BaseModel):
    case_id: uuid.UUID
    opted_out_at: datetime | None
    notifications: list[MessageInternal]


@router.get(
    "/internal/v1/cases/{case_id}/notifications",
    response_model=CaseNotificationsInternal,
    include_in_schema=False,
    dependencies=[InternalCaller],
)
async def case_notifications(case_id: uuid.UUID, request: Request) -> dict[str, Any]:
    """What the citizen was told of, by which channel, and how it went: for the agent's case view."""
    pool = request.app.state.runtime.pool
    rows = await pool.fetch(
        "SELECT m.message_id, n.kind, m.channel, COALESCE(m.status, n.state) AS status, "
        "COALESCE(m.reason, n.last_error) AS reason, COALESCE(m.attempts, n.attempts) AS attempts, "
        "n.created_at, m.sent_at, m.delivered_at FROM notify.notifications n "
        "LEFT JOIN notify.messages m USING (notification_id) "
        "WHERE n.case_id = $1 ORDER BY n.created_at, m.channel",
        case_id,
    )
    opted_out = await pool.fetchval("SELECT opted_out_at FROM notify.opt_outs WHERE case_id = $1", case_id)
    return {"case_id": case_id, "opted_out_at": opted_out, "notifications": [dict(r) for r in rows]}


def _stop_page(lang: str, state: str, status: int = 200) -> HTMLResponse:
    html = _pages.get_template("stop.html").render(lang=lang, t=Texts(lang), state=state)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/notifications/stop/{token}", response_class=HTMLResponse, include_in_schema=False)
async def stop_page(token: str, request: Request, lang: Lang) -> HTMLResponse:
    """The link in every message: a page that asks, so that a mail scanner following links stops nothing."""
    if case_of_stop_token(token, request.app.state.settings.link_secret) is None:
        return _stop_page(lang, "invalid", 404)
    return _stop_page(lang, "ask")


@router.post("/notifications/stop/{token}", response_class=HTMLResponse, include_in_schema=False)
async def stop(token: str, request: Request, lang: Lang) -> HTMLResponse:
    """Stop the case's messages: the page's button, or a mail client's one-click unsubscribe (RFC 8058)."""
    case_id = case_of_stop_token(token, request.app.state.settings.link_secret)
    if case_id is None:
        return _stop_page(lang, "invalid", 404)
    await request.app.state.runtime.pool.execute(
        "INSERT INTO notify.opt_outs(case_id) VALUES ($1) ON CONFLICT DO NOTHING", case_id
    )
    log.info("the citizen stopped the case's messages", extra={"case_id": str(case_id)})
    return _stop_page(lang, "done")


class SmsStatus(BaseModel):
    reference: uuid.UUID = Field(description="the message id notify gave the provider")
    status: str = Field(pattern="^(delivered|failed)$")
    reason: str | None = Field(default=None, max_length=500)


@router.post("/v1/sms/status", status_code=204, include_in_schema=False)
async def sms_status(
    report: SmsStatus, request: Request, authorization: Annotated[str | None, Header()] = None
) -> None:
    """The SMS provider's delivery report: a sent SMS becomes delivered, or a permanent failure."""
    settings: NotifySettings = request.app.state.settings
    expected = f"Bearer {settings.sms_http_token or ''}"
    if (
        not settings.sms_http_token
        or authorization is None
        or not hmac.compare_digest(authorization.encode(), expected.encode())
    ):
        raise ApiError("auth.missing_token", status=401)
    delivered = report.status == "delivered"
    await request.app.state.runtime.pool.execute(
        "UPDATE notify.messages SET status = $2, reason = $3, updated_at = now(), "
        "delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END "
        "WHERE message_id = $1 AND channel = 'sms' AND status IN ('sent', 'sending')",
        report.reference,
        "delivered" if delivered else "permanent-failure",
        None if delivered else (report.reason or "the provider could not deliver it"),
    )
