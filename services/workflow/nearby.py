"""The open reports near a street report, read from intake's internal API at each read of the case (the
points stay in intake), so that an agent sees which report this one may duplicate and merges it with
`mark-duplicate` and `duplicate_of`."""

from __future__ import annotations

import logging
import uuid

import httpx
from pydantic import BaseModel, ValidationError

from services.workflow.schemas import NearbyReport
from services.workflow.settings import WorkflowSettings
from shared.i18n import translate
from shared.procedures import Procedure

log = logging.getLogger(__name__)


class CaseNearby(BaseModel):
    reports: list[NearbyReport]


async def fetch_nearby(
    client: httpx.AsyncClient,
    *,
    settings: WorkflowSettings,
    procedure: Procedure,
    case_id: uuid.UUID,
    lang: str,
) -> tuple[list[NearbyReport] | None, str | None]:
    """The reports nearby, or None and why not (the rest of the case is still worth showing); None and
    no reason for a procedure whose cases have no place."""
    if procedure.located is None:
        return None, None
    url = f"{settings.intake_internal_url.rstrip('/')}/internal/v1/cases/{case_id}/nearby"
    try:
        answer = await client.get(
            url,
            params={"lang": lang},
            headers={"Authorization": f"Bearer {settings.internal_token}"},
            timeout=3,
        )
        answer.raise_for_status()
        return CaseNearby.model_validate(answer.json()).reports, None
    except httpx.HTTPError as exc:
        log.warning("cannot read the reports nearby from intake: %r", exc, extra={"case_id": str(case_id)})
    except (ValueError, ValidationError) as exc:
        log.warning("intake's reports nearby are not readable: %s", exc, extra={"case_id": str(case_id)})
    return None, translate("workflow.nearby_unreachable", lang)
