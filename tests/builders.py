"""Builders for test data: valid submissions for each procedure, with overrides; and an agent's action on
a case as workflow shows it now."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from devtools.demo import APPLICANT, VALID_DATA
from shared import tracking_code
from shared.events.intake import CaseSubmitted
from tests.waiting import eventually


def make_case(
    procedure: str = "permis-construire",
    *,
    data: dict[str, Any] | None = None,
    applicant: dict[str, Any] | None = None,
    channel: str = "web",
    **data_overrides: Any,
) -> dict[str, Any]:
    return {
        "procedure": procedure,
        "data": {**(VALID_DATA[procedure] if data is None else data), **data_overrides},
        "applicant": {**APPLICANT, **(applicant or {})},
        "channel": channel,
    }


async def act_now(
    workflow: httpx.AsyncClient,
    agent: dict[str, str],
    case: dict[str, Any],
    action: str,
    *,
    lang: str | None = None,
    **extra: Any,
) -> httpx.Response:
    """The agent (`agent`: their headers) does `action` on `case` at the version workflow shows now, once
    workflow has opened it; `extra` goes in the body (`comment`, `duplicate_of`...). The answer is
    workflow's, in `lang` if one is given."""
    url, params = f"/v1/cases/{case['case_id']}", {"lang": lang} if lang else {}
    seen = await eventually(
        lambda: workflow.get(url, headers=agent, params=params), until=lambda r: r.status_code == 200
    )
    assert seen.status_code == 200, seen.text
    body = {"action": action, "expected_version": seen.json()["version"], **extra}
    return await workflow.post(f"{url}/actions", headers=agent, params=params, json=body)


def case_submitted(
    case_id: uuid.UUID, *, at: datetime, facts: dict[str, Any], procedure: str = "permis-construire"
) -> CaseSubmitted:
    """A building permit's CaseSubmitted as intake emits it (public facts only), for the tests and the
    bench's event-level measures."""
    return CaseSubmitted(
        case_id=case_id,
        tracking_code_digest=tracking_code.digest(tracking_code.generate()),
        procedure=procedure,
        procedure_version=1,
        service="urbanisme",
        channel="web",
        language="fr",
        submitted_at=at,
        legal_deadline=at.date() + timedelta(days=60),
        first_step="received",
        facts=facts,
    )
