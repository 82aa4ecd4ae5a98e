"""workflow's HTTP routes: the agent's queue, a case, and actions on it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from services.workflow import documents, domain, queries, service
from services.workflow.applicants import (
    fetch_case_file,
    file_answers,
    form_answers,
    parts_read,
    replies_with_files,
)
from services.workflow.clock import city_today
from services.workflow.deps import CatalogueDep, ClockDep, Pool, SettingsDep
from services.workflow.nearby import fetch_nearby
from services.workflow.notifications import fetch_notifications
from services.workflow.schemas import (
    ActionCreate,
    ActionPublic,
    CaseDetail,
    CaseFile,
    HistoryItem,
    QueueItem,
    QueuePage,
)
from shared import params
from shared.auth import Agent, CurrentAgent
from shared.http import Lang
from shared.procedures import Role

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")


@router.get("/queue", response_model=QueuePage)
async def get_queue(
    agent: CurrentAgent,
    pool: Pool,
    catalogue: CatalogueDep,
    clock: ClockDep,
    settings: SettingsDep,
    lang: Lang,
    step: str | None = None,
    assignee: str | None = None,
    procedure: str | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> QueuePage:
    services = None if agent.role == Role.ADMIN else sorted(agent.services)
    async with pool.acquire() as conn:
        total, rows = await queries.queue(
            conn,
            services=services,
            step=step,
            assignee=assignee,
            procedure=procedure,
            limit=page_size,
            offset=(page - 1) * page_size,
        )
    today = city_today(clock)
    items = []
    for row in rows:
        proc = catalogue.get(row["procedure"], row["procedure_version"])
        days_left = (row["legal_deadline"] - today).days if row["legal_deadline"] else None
        paused = row["clock_paused_since"] is not None
        items.append(
            QueueItem(
                **{
                    k: row[k]
                    for k in (
                        "case_id",
                        "procedure",
                        "procedure_version",
                        "service",
                        "step",
                        "assignee",
                        "submitted_at",
                        "legal_deadline",
                        "version",
                    )
                },
                step_label=proc.step(row["step"]).label.in_(lang) if proc else row["step"],
                days_left=days_left,
                clock_paused=paused,
                at_risk=days_left is not None and not paused and days_left <= settings.warn_days,
            )
        )
    return QueuePage(total=total, page=page, page_size=page_size, items=items)


def _history(rows: list[dict[str, Any]]) -> list[HistoryItem]:
    out = []
    for row in rows:
        data = dict(row["envelope"]["data"])
        at = data.get("at") or data.get("opened_at") or row["envelope"]["time"]
        out.append(
            HistoryItem(
                version=row["version"],
                type=row["type"],
                at=at,
                by=data.get("by"),
                data=data,
                comment=row["comment"],
                reason=row["reason"],
            )
        )
    return out


async def _read_case_file(
    request: Request, pool: Pool, settings: SettingsDep, *, case_id: uuid.UUID, agent: Agent, lang: str
) -> tuple[CaseFile | None, str | None]:
    """What the citizen gave, from intake; the read is logged before anything of it is shown."""
    case_file, unavailable = await fetch_case_file(
        request.app.state.http, settings=settings, case_id=case_id, lang=lang
    )
    if case_file is not None:
        what = parts_read(case_file)
        async with pool.acquire() as conn:
            await queries.log_personal_data_read(conn, case_id=case_id, agent=agent.id, what=what)
        log.info("agent %s read the case's %s", agent.id, ", ".join(what), extra={"case_id": str(case_id)})
    return case_file, unavailable


@router.get("/cases/{case_id}", response_model=CaseDetail)
async def get_case(
    case_id: uuid.UUID,
    request: Request,
    agent: CurrentAgent,
    pool: Pool,
    catalogue: CatalogueDep,
    settings: SettingsDep,
    lang: Lang,
) -> CaseDetail:
    """A case: its step, clock and history, with what the citizen gave (applicant, form, replies)."""
    async with pool.acquire() as conn:
        state = await queries.load(conn, case_id, catalogue)
        if state is None:
            raise domain.NotFound("workflow.case_not_found", case_id=case_id)
        domain.check_visible(state, agent)
        history = await queries.history(conn, case_id)
    (case_file, unavailable), (told, untold), (nearby, nearby_unavailable) = await asyncio.gather(
        _read_case_file(request, pool, settings, case_id=case_id, agent=agent, lang=lang),
        fetch_notifications(request.app.state.notify_http, settings=settings, case_id=case_id, lang=lang),
        fetch_nearby(
            request.app.state.http, settings=settings, procedure=state.procedure, case_id=case_id, lang=lang
        ),
    )
    return CaseDetail(
        case_id=case_id,
        procedure=state.procedure.code,
        procedure_version=state.procedure.version,
        service=state.service,
        step=state.step,
        step_label=state.procedure.step(state.step).label.in_(lang),
        version=state.version,
        assignee=state.assignee,
        legal_deadline=state.legal_deadline,
        clock_paused=state.clock_paused_since is not None,
        outcome=state.outcome,
        allowed_actions=domain.allowed_actions(state, agent),
        history=_history(history),
        applicant=case_file.applicant if case_file else None,
        form=form_answers(state.procedure, case_file.data, lang) if case_file else [],
        files=file_answers(state.procedure, case_file, case_id=case_id, lang=lang) if case_file else [],
        replies=replies_with_files(case_file, case_id=case_id) if case_file else [],
        rating=case_file.rating if case_file else None,
        submission_unavailable=unavailable,
        applicant_unavailable=unavailable,
        personal_data_erased_at=case_file.erased_at if case_file else None,
        notifications=told.notifications if told else [],
        notifications_stopped_at=told.opted_out_at if told else None,
        notifications_unavailable=untold,
        nearby=nearby,
        nearby_unavailable=nearby_unavailable,
    )


_DOWNLOAD = {
    200: {
        "description": "The file, as an attachment (`Content-Disposition`), its type read from its content",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in documents.CONTENT_TYPES},
    },
}


@router.get(
    "/cases/{case_id}/documents/{document_id}",
    response_class=Response,
    responses=_DOWNLOAD,  # type: ignore[arg-type]
)
async def download_document(
    case_id: uuid.UUID,
    document_id: Annotated[str, Path(pattern=documents.DOCUMENT_ID)],
    request: Request,
    agent: CurrentAgent,
    pool: Pool,
    catalogue: CatalogueDep,
    settings: SettingsDep,
) -> Response:
    """A file the citizen sent (a form's file field, or with a reply), for an agent of the case's
    service. Each download is logged as a read of the case's personal data."""
    async with pool.acquire() as conn:
        state = await queries.load(conn, case_id, catalogue)
        if state is None:
            raise domain.NotFound("workflow.case_not_found", case_id=case_id)
        domain.check_visible(state, agent)
    answer = await documents.open_document(
        request.app.state.http, settings=settings, case_id=case_id, document_id=document_id
    )
    try:
        async with pool.acquire() as conn:
            what = [f"document {document_id}"]
            await queries.log_personal_data_read(conn, case_id=case_id, agent=agent.id, what=what)
    except BaseException:
        await answer.aclose()
        raise
    log.info("agent %s downloaded document %s", agent.id, document_id, extra={"case_id": str(case_id)})
    return documents.streamed(answer, filename=documents.filename_of(answer, document_id))


@router.post(
    "/cases/{case_id}/actions",
    response_model=ActionPublic,
    openapi_extra={"parameters": [params.IDEMPOTENCY_KEY]},
)
async def post_action(
    request: Request, case_id: uuid.UUID, body: ActionCreate, agent: CurrentAgent
) -> Response:
    # The agents' busiest route: beside its path, body and token, it reads what it needs from the app
    # and the request (`shared.params`), with no dependency to solve, and answers its JSON as it is.
    state = request.app.state
    answer, replayed = await service.act(
        state.runtime.pool,
        catalogue=state.catalogue,
        clock=state.clock,
        case_id=case_id,
        agent=agent,
        command=body,
        idempotency_key=params.idempotency_key(request),
    )
    # A replay's answer comes back from jsonb, its keys in another order: written through the model, a
    # retry's body is byte for byte the first one.
    return Response(
        ActionPublic.model_validate(answer).model_dump_json(),
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"} if replayed else None,
    )
