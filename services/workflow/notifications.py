"""What the citizen was told of lives in notify; the case view reads it from notify's internal API at each
read, so an agent can answer "did I get the message?" without asking anyone."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

import httpx
from pydantic import BaseModel, ValidationError

from services.workflow.schemas import CitizenNotification
from services.workflow.settings import WorkflowSettings
from shared.i18n import translate

log = logging.getLogger(__name__)


class CaseNotifications(BaseModel):
    notifications: list[CitizenNotification]
    opted_out_at: datetime | None = None


async def fetch_notifications(
    client: httpx.AsyncClient, *, settings: WorkflowSettings, case_id: uuid.UUID, lang: str
) -> tuple[CaseNotifications | None, str | None]:
    """The case's notifications, or None and why not (the rest of the case is still worth showing)."""
    url = f"{settings.notify_internal_url.rstrip('/')}/internal/v1/cases/{case_id}/notifications"
    try:
        answer = await client.get(
            url, headers={"Authorization": f"Bearer {settings.internal_token}"}, timeout=3
        )
        answer.raise_for_status()
        return CaseNotifications.model_validate(answer.json()), None
    except httpx.HTTPError as exc:
        log.warning(
            "cannot read the case's notifications from notify: %r", exc, extra={"case_id": str(case_id)}
        )
    except (ValueError, ValidationError) as exc:
        log.warning("notify's answer is not readable: %s", exc, extra={"case_id": str(case_id)})
    return None, translate("workflow.notify_unreachable", lang)
