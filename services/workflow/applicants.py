"""What the citizen gave (contact details, the form, their replies) lives in intake; workflow fetches it
for an agent on intake's internal API at each read, and never stores it."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
from pydantic import ValidationError

from services.workflow.schemas import (
    CaseDocument,
    CaseFile,
    CitizenReply,
    DocumentLink,
    FileAnswer,
    FormAnswer,
)
from services.workflow.settings import WorkflowSettings
from shared.i18n import translate
from shared.procedures import FieldType, Procedure

log = logging.getLogger(__name__)


async def fetch_case_file(
    client: httpx.AsyncClient, *, settings: WorkflowSettings, case_id: uuid.UUID, lang: str
) -> tuple[CaseFile | None, str | None]:
    """The case as the citizen gave it, or None and why not (the rest of the case is still worth showing)."""
    url = f"{settings.intake_internal_url.rstrip('/')}/internal/v1/cases/{case_id}"
    try:
        answer = await client.get(
            url, headers={"Authorization": f"Bearer {settings.internal_token}"}, timeout=3
        )
    except httpx.HTTPError as exc:
        log.warning("cannot reach intake for the case file: %r", exc, extra={"case_id": str(case_id)})
        return None, translate("workflow.intake_unreachable", lang)
    if answer.status_code != 200:
        log.warning(
            "intake answered %d for the case file", answer.status_code, extra={"case_id": str(case_id)}
        )
        return None, translate("workflow.intake_refused", lang, status=answer.status_code)
    try:
        return CaseFile.model_validate(answer.json()), None
    except (ValueError, ValidationError) as exc:
        log.warning("intake's case file is not readable: %s", exc, extra={"case_id": str(case_id)})
        return None, translate("workflow.intake_refused", lang, status=answer.status_code)


def form_answers(procedure: Procedure, data: dict[str, Any], lang: str) -> list[FormAnswer]:
    """Every field of the form in the definition's order, labelled in `lang`; then any value the definition
    the case was submitted under does not name (shown, never hidden, under its own name)."""
    answers = []
    for field in procedure.fields:
        if field.type is FieldType.FILE:
            continue  # in `file_answers`: its value is document ids, its files are what an agent needs
        value = data.get(field.name)
        choice = next((c for c in field.choices if c.value == value), None)
        answers.append(
            FormAnswer(
                name=field.name,
                label=field.label.in_(lang),
                value=value,
                value_label=choice.label.in_(lang) if field.type is FieldType.CHOICE and choice else None,
            )
        )
    known = {f.name for f in procedure.fields}
    answers += [FormAnswer(name=n, label=n, value=v) for n, v in data.items() if n not in known]
    return answers


def _link(case_id: uuid.UUID, document: CaseDocument) -> DocumentLink:
    return DocumentLink(
        document_id=document.document_id,
        filename=document.filename,
        content_type=document.content_type,
        size=document.size,
        received_at=document.created_at,
        url=f"/v1/cases/{case_id}/documents/{document.document_id}",
    )


def file_answers(
    procedure: Procedure, case_file: CaseFile, *, case_id: uuid.UUID, lang: str
) -> list[FileAnswer]:
    """Each file field of the form, labelled in `lang`, with its files (in the order the form names them)
    and the link an agent downloads each one from."""
    by_id = {d.document_id: d for d in case_file.documents}
    answers = []
    for field in procedure.fields:
        if field.type is not FieldType.FILE:
            continue
        ids = case_file.data.get(field.name) or []
        files = [_link(case_id, by_id[i]) for i in ids if isinstance(i, str) and i in by_id]
        answers.append(FileAnswer(name=field.name, label=field.label.in_(lang), files=files))
    return answers


def replies_with_files(case_file: CaseFile, *, case_id: uuid.UUID) -> list[CitizenReply]:
    """The replies, each with the files sent with it."""
    return [
        reply.model_copy(
            update={"files": [_link(case_id, d) for d in case_file.documents if d.reply_id == reply.reply_id]}
        )
        for reply in case_file.replies
    ]


def parts_read(case_file: CaseFile) -> list[str]:
    """What an agent is shown of a case file, as the personal-data read log names it."""
    parts = ["applicant"] if case_file.applicant else []
    return [
        *parts,
        "form",
        *(["replies"] if case_file.replies else []),
        *(["documents"] if case_file.documents else []),  # their names and sizes; the files, if downloaded
        *(["rating"] if case_file.rating and case_file.rating.comment else []),
    ]
