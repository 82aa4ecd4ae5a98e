"""A citizen's file, downloaded by an agent: read from intake's internal API at each download (workflow
keeps no copy) and streamed through, as an attachment the browser neither opens nor sniffs.

The route (`api.py`) checks first that the agent may see the case, and logs the read before a byte of
the file is sent; intake checks that the file is one of that case's.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import quote, unquote

import httpx
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from services.workflow.domain import NotFound
from services.workflow.settings import WorkflowSettings
from shared.http import ApiError

log = logging.getLogger(__name__)
# intake's document ids (`doc_` and 128 random bits).
DOCUMENT_ID = r"^doc_[0-9a-f]{32}$"
CONTENT_TYPES = ("application/pdf", "image/jpeg", "image/png")
_TIMEOUT = httpx.Timeout(30, connect=3)


async def open_document(
    client: httpx.AsyncClient, *, settings: WorkflowSettings, case_id: uuid.UUID, document_id: str
) -> httpx.Response:
    """intake's answer with the file, its body not read yet (close it, or stream it with `streamed`)."""
    request = client.build_request(
        "GET",
        f"{settings.intake_internal_url.rstrip('/')}/internal/v1/documents/{document_id}",
        params={"case_id": str(case_id)},
        headers={"Authorization": f"Bearer {settings.internal_token}"},
        timeout=_TIMEOUT,
    )
    ids = {"case_id": str(case_id), "document_id": document_id}
    try:
        answer = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        log.warning("cannot reach intake for a document: %r", exc, extra=ids)
        raise _unavailable() from exc
    if answer.status_code == 200 and answer.headers.get("content-type") in CONTENT_TYPES:
        return answer
    await answer.aclose()
    if answer.status_code == 404:
        raise NotFound("workflow.document_not_found", document_id=document_id)
    log.warning("intake answered %d for a document", answer.status_code, extra=ids)
    raise _unavailable()


def _unavailable() -> ApiError:
    return ApiError("workflow.documents_unavailable", status=503, headers={"Retry-After": "5"})


def streamed(answer: httpx.Response, *, filename: str) -> StreamingResponse:
    """intake's answer, passed on as it arrives, as a download."""
    headers = {
        "Content-Disposition": attachment(filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "no-store",
    }
    if "content-length" in answer.headers and "content-encoding" not in answer.headers:
        headers["Content-Length"] = answer.headers["content-length"]
    return StreamingResponse(
        answer.aiter_bytes(),
        media_type=answer.headers["content-type"],
        headers=headers,
        background=BackgroundTask(answer.aclose),
    )


def attachment(filename: str) -> str:
    """`Content-Disposition` for a download named `filename` (RFC 6266: an ASCII name for old clients,
    the real one in `filename*`)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def filename_of(answer: httpx.Response, document_id: str) -> str:
    """The file's name, as intake gives it."""
    return unquote(answer.headers.get("suivi-document-filename", "")) or document_id
