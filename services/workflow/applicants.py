"""The applicant's contact details live in intake; workflow fetches them for an agent, on intake's
internal API, and never stores them."""

from __future__ import annotations

import logging
import uuid

import httpx

from services.workflow.schemas import Applicant
from services.workflow.settings import WorkflowSettings

log = logging.getLogger(__name__)


async def fetch_applicant(
    client: httpx.AsyncClient, *, settings: WorkflowSettings, case_id: uuid.UUID
) -> tuple[Applicant | None, str | None]:
    """The applicant, or None and why not (the rest of the case is still worth showing)."""
    url = f"{settings.intake_internal_url.rstrip('/')}/internal/v1/cases/{case_id}/applicant"
    try:
        answer = await client.get(
            url, headers={"Authorization": f"Bearer {settings.internal_token}"}, timeout=3
        )
    except httpx.HTTPError as exc:
        log.warning("cannot reach intake for the applicant: %s", exc, extra={"case_id": str(case_id)})
        return None, "intake is unreachable; try again in a moment"
    if answer.status_code != 200:
        log.warning(
            "intake answered %d for the applicant", answer.status_code, extra={"case_id": str(case_id)}
        )
        return None, f"intake answered {answer.status_code}"
    return Applicant.model_validate(answer.json()), None
