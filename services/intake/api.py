"""intake's HTTP routes: the procedure catalogue and submitting a case."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import asyncpg
from fastapi import APIRouter, Request, Response

from services.intake import domain, queries
from services.intake.deps import CatalogueDep, IdempotencyKey, Pool, SettingsDep
from services.intake.schemas import (
    CaseCreate,
    CasePublic,
    ChoicePublic,
    FieldPublic,
    LegalDeadlinePublic,
    ProcedurePublic,
    ProcedureSummary,
    StepPublic,
)
from shared.http import ApiError, Lang
from shared.procedures import Catalogue, Procedure, Text
from shared.telemetry import current_traceparent, meter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
cases_submitted = meter.create_counter("suivi.cases.submitted", unit="{case}", description="Cases submitted")


def _text(text: Text | None, lang: str) -> str | None:
    return text.in_(lang) if text else None


def _summary(p: Procedure, lang: str) -> dict[str, Any]:
    return {
        "code": p.code,
        "version": p.version,
        "title": p.title.in_(lang),
        "summary": p.summary.in_(lang),
        "service": p.service,
        "url": f"/v1/procedures/{p.code}?lang={lang}",
    }


@router.get("/procedures", response_model=list[ProcedureSummary])
async def list_procedures(catalogue: CatalogueDep, lang: Lang) -> list[dict[str, Any]]:
    return [_summary(p, lang) for p in catalogue.all_latest()]


def _procedure_or_404(catalogue: Catalogue, code: str) -> Procedure:
    procedure = catalogue.latest(code)
    if procedure is None:
        raise ApiError(
            "error.unknown_procedure", status=404, code=code, available=", ".join(catalogue.codes())
        )
    return procedure


@router.get("/procedures/{code}", response_model=ProcedurePublic)
async def get_procedure(code: str, catalogue: CatalogueDep, lang: Lang) -> ProcedurePublic:
    p = _procedure_or_404(catalogue, code)
    return ProcedurePublic(
        **_summary(p, lang),
        legal_basis=p.legal_basis,
        legal_deadline=LegalDeadlinePublic(**p.legal_deadline.model_dump()) if p.legal_deadline else None,
        fields=[
            FieldPublic(
                name=f.name,
                type=f.type,
                label=f.label.in_(lang),
                help=_text(f.help, lang),
                required=f.required,
                min_length=f.min_length,
                max_length=f.max_length,
                minimum=f.minimum,
                maximum=f.maximum,
                pattern=f.pattern,
                pattern_hint=_text(f.pattern_hint, lang),
                choices=[ChoicePublic(value=c.value, label=c.label.in_(lang)) for c in f.choices],
            )
            for f in p.fields
        ],
        steps=[
            StepPublic(
                code=s.code,
                label=s.label.in_(lang),
                explanation=s.explanation.in_(lang),
                turn=s.turn,
                expected_days=s.expected_days,
                final=s.outcome is not None,
            )
            for s in p.steps
        ],
    )


def _public(case: dict[str, Any], procedure: Procedure, settings: SettingsDep, lang: str) -> CasePublic:
    code = case["tracking_code"]
    return CasePublic(
        case_id=case["case_id"],
        tracking_code=code,
        tracking_url=f"{settings.tracking_public_url.rstrip('/')}/suivi/{code}?lang={lang}",
        procedure=case["procedure"],
        procedure_version=case["procedure_version"],
        submitted_at=case["submitted_at"],
        legal_deadline=case["legal_deadline"],
        status=procedure.first_step.label.in_(lang),
        version=1,
    )


async def _replay(pool: asyncpg.Pool, key: str, request_hash: str) -> dict[str, Any] | None:
    previous = await queries.find_by_idempotency_key(pool, key)
    if previous is None:
        return None
    if previous["request_hash"] != request_hash:
        raise ApiError("error.idempotency_key_reused", status=422)
    return dict(previous)


@router.post("/cases", status_code=201, response_model=CasePublic)
async def submit_case(
    body: CaseCreate,
    request: Request,
    response: Response,
    pool: Pool,
    catalogue: CatalogueDep,
    settings: SettingsDep,
    lang: Lang,
    key: IdempotencyKey,
) -> CasePublic:
    request_hash = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    if key and (previous := await _replay(pool, key, request_hash)):
        response.status_code, response.headers["Idempotent-Replayed"] = 200, "true"
        return _public(previous, _procedure_or_404(catalogue, previous["procedure"]), settings, lang)
    procedure = _procedure_or_404(catalogue, body.procedure)
    data, errors = domain.check_data(procedure, body.data, lang)
    applicant, applicant_errors = domain.check_applicant(body.applicant, lang)
    if errors or applicant_errors:
        raise ApiError("error.invalid_request", status=422, errors=errors + applicant_errors)
    submission = domain.submit(
        procedure=procedure, request=body.model_copy(update={"applicant": applicant}), data=data
    )
    try:
        await queries.record_submission(
            pool,
            submission=submission,
            events=domain.first_events(submission, traceparent=current_traceparent()),
            idempotency_key=key,
            request_hash=request_hash,
        )
    except queries.DuplicateKey:
        assert key is not None
        previous = await _replay(pool, key, request_hash)
        assert previous is not None
        response.status_code, response.headers["Idempotent-Replayed"] = 200, "true"
        return _public(previous, procedure, settings, lang)
    cases_submitted.add(1, {"procedure": procedure.code, "channel": body.channel})
    log.info("case submitted", extra={"case_id": str(submission.case_id), "procedure": procedure.code})
    case = {
        "case_id": submission.case_id,
        "tracking_code": submission.tracking_code,
        "procedure": procedure.code,
        "procedure_version": procedure.version,
        "submitted_at": submission.submitted_at,
        "legal_deadline": submission.legal_deadline,
    }
    return _public(case, procedure, settings, lang)
