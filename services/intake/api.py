"""intake's HTTP routes: the procedure catalogue and submitting a case."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import APIRouter, Request, Response

from services.intake import documents, domain, nearby, places, queries
from services.intake.deps import CatalogueDep
from services.intake.documents import NO_FILES, Received
from services.intake.schemas import (
    ApplicantCreate,
    CaseCreate,
    CasePublic,
    ChoicePublic,
    FieldPublic,
    LegalDeadlinePublic,
    ProcedurePublic,
    ProcedureSummary,
    StepPublic,
)
from services.intake.settings import IntakeSettings
from shared import idempotency, params
from shared.deps import procedure_or_404
from shared.http import ApiError, Lang, language_of
from shared.idempotency import Answer, Idempotent
from shared.objectstore import ObjectStore
from shared.places import Geocoder
from shared.procedures import Catalogue, FieldType, Procedure, Text
from shared.telemetry import current_traceparent, meter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
cases_submitted = meter.create_counter("suivi.cases.submitted", unit="{case}", description="Cases submitted")
# Citizens' keys are not tied to an account: one scope for every submission (a key is a random id).
SUBMISSION_SCOPE = "submission"


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


@router.get("/procedures/{code}", response_model=ProcedurePublic)
async def get_procedure(code: str, catalogue: CatalogueDep, lang: Lang) -> ProcedurePublic:
    p = procedure_or_404(catalogue, code)
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
                accept=list(f.accept),
                max_bytes=f.max_bytes,
                max_files=f.files_at_most if f.type is FieldType.FILE else None,
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


def _public(case: dict[str, Any], procedure: Procedure, settings: IntakeSettings, lang: str) -> CasePublic:
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


def _idempotent(key: str | None, body: CaseCreate, files: Received) -> Idempotent | None:
    if key is None:
        return None
    request = body.model_dump(mode="json")
    if body.applicant.notify_by is None:
        # Not given: the request a key was recorded for before `notify_by` existed, so its retry replays.
        del request["applicant"]["notify_by"]
    if files.checked:
        request["files"] = documents.request_hash_part(files.checked)
    request_hash = idempotency.fingerprint(request)
    return Idempotent(schema=queries.SCHEMA, scope=SUBMISSION_SCOPE, key=key, request_hash=request_hash)


def _checked(
    body: CaseCreate, procedure: Procedure, files: Received, lang: str
) -> tuple[dict[str, Any], ApplicantCreate]:
    """The form's data (a file field's: the ids of its files) and the applicant, cleaned; or a 422
    naming every problem, the files' included."""
    by_field = documents.ids_by_field(files.checked)
    data, errors = domain.check_data(procedure, body.data, lang, documents=by_field)
    applicant, applicant_errors = domain.check_applicant(body.applicant, lang)
    refused = {e["field"] for e in files.errors}  # a field whose files were refused is not "missing" too
    errors = [e for e in errors if e["field"] not in refused] + files.errors + applicant_errors
    if errors:
        raise ApiError("error.invalid_request", status=422, errors=errors)
    return data, applicant


async def _submit(
    conn: asyncpg.Connection,
    body: CaseCreate,
    catalogue: Catalogue,
    settings: IntakeSettings,
    lang: str,
    files: Received,
    idempotent: Idempotent | None,
) -> tuple[Answer, bool]:
    """Check and record a submission: the answer, and whether it is the first one of its key, replayed."""
    try:
        procedure = procedure_or_404(catalogue, body.procedure)
        data, applicant = _checked(body, procedure, files, lang)
    except ApiError:
        # A retry of a request answered before (its procedure has changed since, say) gets that answer.
        if idempotent is not None and (first := await idempotency.replay(conn, idempotent)) is not None:
            return first, True
        raise
    submission = domain.submit(
        procedure=procedure, request=body.model_copy(update={"applicant": applicant}), data=data
    )
    case = {
        "case_id": submission.case_id,
        "tracking_code": submission.tracking_code,
        "procedure": procedure.code,
        "procedure_version": procedure.version,
        "submitted_at": submission.submitted_at,
        "legal_deadline": submission.legal_deadline,
    }
    answer = Answer(status=201, body=_public(case, procedure, settings, lang).model_dump(mode="json"))
    recorded = await queries.record_submission(
        conn,
        submission=submission,
        events=domain.first_events(submission, traceparent=current_traceparent()),
        place=nearby.place_of(submission),
        answer=answer,
        idempotent=idempotent,
    )
    if not recorded:
        assert idempotent is not None, "only a key's claim keeps a submission from being recorded"
        first = await idempotency.replay(conn, idempotent)
        assert first is not None, "a key's claim lost to a key recorded"
        return first, True
    await queries.record_documents(conn, case_id=submission.case_id, documents=files.checked)
    return answer, False


async def _migrated(
    pool: asyncpg.Pool, answer: Answer, catalogue: Catalogue, settings: IntakeSettings, lang: str
) -> Answer:
    """Keys recorded before answers were stored (migration 011) name their case only: answer from it."""
    if "migrated_case_id" not in answer.body:
        return answer
    case = await queries.get_case(pool, uuid.UUID(answer.body["migrated_case_id"]))
    assert case is not None, "a key's case is never deleted"
    public = _public(case, procedure_or_404(catalogue, case["procedure"]), settings, lang)
    return Answer(status=answer.status, body=public.model_dump(mode="json"))


@dataclass(frozen=True)
class Submitted:
    """What a submission came to: the case, and whether it is the answer given first to the same key."""

    case: CasePublic
    status: int
    replayed: bool


async def submit(
    *,
    pool: asyncpg.Pool,
    body: CaseCreate,
    catalogue: Catalogue,
    settings: IntakeSettings,
    lang: str,
    key: str | None,
    files: Received = NO_FILES,
    store: ObjectStore | None = None,
    geocoder: Geocoder | None = None,
) -> Submitted:
    """Check and record a submission, once per `key`: the one path of the JSON route and of the form
    pages. `files` are the form's files (`documents.receive_fields`), kept in `store` before the case is
    recorded, and deleted again if it is not. Raises `ApiError` (an unknown procedure, 404; invalid
    fields, 422, with each field's problem), `idempotency.KeyReused`, an `ObjectStoreError` or a
    database error (nothing was recorded). A street report's address is turned into a point by
    `geocoder` first (the key's fingerprint is of the request as sent)."""
    located = body
    if geocoder is not None and (procedure := catalogue.latest(body.procedure)) is not None:
        located = body.model_copy(update={"data": await places.locate(procedure, body.data, geocoder)})
    if files.checked or files.errors:  # every problem is answered before a file is kept
        _checked(located, procedure_or_404(catalogue, body.procedure), files, lang)
    async with documents.kept(store, files.checked) as kept:
        # Without files, the submission is one statement; its files' rows go in the same transaction.
        async with (
            pool.acquire() as conn,
            conn.transaction() if files.checked else contextlib.nullcontext(),
        ):
            answer, replayed = await _submit(
                conn, located, catalogue, settings, lang, files, _idempotent(key, body, files)
            )
        if replayed:
            await kept.discard()  # the first request's files are the case's
    if replayed:
        answer = await _migrated(pool, answer, catalogue, settings, lang)
    case = CasePublic.model_validate(answer.body)
    if not replayed:
        cases_submitted.add(1, {"procedure": case.procedure, "channel": body.channel})
        log.info("case submitted", extra={"case_id": str(case.case_id), "procedure": case.procedure})
    return Submitted(case=case, status=answer.status, replayed=replayed)


async def submit_from(
    request: Request, body: CaseCreate, *, lang: str, key: str | None, files: Received = NO_FILES
) -> Submitted:
    """`submit`, with the pool, catalogue, settings, document store and geocoder of the app serving
    `request`: the one call of the JSON route, the form pages and Open311's reports."""
    state = request.app.state
    return await submit(
        pool=state.runtime.pool,
        body=body,
        catalogue=state.catalogue,
        settings=state.settings,
        lang=lang,
        key=key,
        files=files,
        store=state.documents,
        geocoder=state.geocoder,
    )


_FILES = (
    "the files of the procedure's file fields (`type: file` in `GET /v1/procedures/{code}`, e.g. `plans`, "
    "`photo`), one part per file, named after its field; the type is read from the content"
)


@router.post(
    "/cases",
    status_code=201,
    response_model=CasePublic,
    openapi_extra={
        **documents.upload_openapi("case", "CaseCreate", _FILES),
        "parameters": [*params.LANGUAGE, params.IDEMPOTENCY_KEY],
    },
)
async def submit_case(request: Request, body: CaseCreate) -> Response:
    """Submit a case, as JSON, or as `multipart/form-data` with files: the JSON in a part named `case`,
    each file in a part named after its field (`plans`, `photo`...). The form's data then names each
    file by its document id. A retry with the same `Idempotency-Key` creates nothing and gets the first
    answer again (same status and body, with `Idempotent-Replayed: true`)."""
    # What the route reads beside its body comes straight from the request (`shared.params`): a peak of
    # submissions meets no dependency to solve.
    lang, key, uploads = language_of(request), params.idempotency_key(request), documents.uploads_of(request)
    files = NO_FILES
    if uploads:
        catalogue = request.app.state.catalogue
        files = await documents.receive_fields(procedure_or_404(catalogue, body.procedure), uploads, lang)
    submitted = await submit_from(request, body, lang=lang, key=key, files=files)
    return Response(
        submitted.case.model_dump_json(),
        status_code=submitted.status,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"} if submitted.replayed else None,
    )
