"""intake's internal API, for other Suivi services only (not routed by the public ingress).

workflow asks here for an applicant's contact details when an agent opens a case, instead of the
details ever travelling on the bus.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header

from services.intake.deps import Pool, SettingsDep
from shared.http import ApiError

router = APIRouter(prefix="/internal/v1", include_in_schema=False)


def _check_token(settings: SettingsDep, authorization: str | None) -> None:
    expected = f"Bearer {settings.internal_token}"
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise ApiError("auth.missing_token", status=401)


@router.get("/cases/{case_id}/applicant")
async def get_applicant(
    case_id: uuid.UUID,
    pool: Pool,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    _check_token(settings, authorization)
    row = await pool.fetchrow(
        "SELECT name, email, phone, language FROM intake.applicants WHERE case_id = $1", case_id
    )
    if row is None:
        raise ApiError("workflow.case_not_found", status=404, case_id=case_id)
    return dict(row)
