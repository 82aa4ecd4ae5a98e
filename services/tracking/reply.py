"""The reply part of a case's page, while the city hall waits for the citizen (documents, information):
the form (a message and files), what was typed and what is wrong with it, and sending it on to intake's
`POST /v1/replies` as multipart (the JSON part `reply`, the files as parts `documents`). intake checks
and records the reply, once per idempotency key (drawn with the form: a double click records one reply);
tracking keeps nothing of it and only relays intake's answer.

The route is `POST /suivi/reponse`, the tracking code in the body (a hidden field): the path is the same
for every case, so that it has its own body limit (`app.py`), and the code is not in one more URL."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field

import httpx
from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from services.tracking.forwarding import intake_problem
from services.tracking.schemas import TrackingView
from services.tracking.settings import TrackingSettings
from shared.pages import Texts
from shared.ratelimit import client_of

log = logging.getLogger(__name__)
PATH = "/suivi/reponse"
# After the reply was recorded, the page thanks the citizen (`?reponse=envoyee`): tracking may not have
# folded `CitizenReplied` yet, and would still show the form.
THANKED = "envoyee"
# Files take longer than a rating to go through.
INTAKE_TIMEOUT_SECONDS = 60
# The error summary's links: intake's field names, and the id of the input each is about.
TARGETS = {"message": "reply-message", "documents": "reply-documents"}
File = tuple[str, bytes, str]


@dataclass(frozen=True)
class ReplyError:
    text: str
    target: str | None  # the id of the field it is about


@dataclass(frozen=True)
class ReplySection:
    """The reply part of the page: the form (the key it is sent with, what was typed, what is wrong),
    or thanks."""

    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    done: str | None = None  # the thanks, shown instead of the form
    message: str = ""
    errors: tuple[ReplyError, ...] = ()
    files_sent: bool = False  # files were chosen: a form sent back cannot keep them
    closed: bool = False  # the case waits for no reply: the errors say so, without the form

    @property
    def summary(self) -> list[ReplyError]:
        return list(self.errors)

    def error_of(self, name: str) -> str | None:
        """The messages about one field (`message`, `documents`), for beside it."""
        found = [e.text for e in self.errors if e.target == TARGETS[name]]
        return " ".join(found) or None


@dataclass(frozen=True)
class TypedReply:
    code: str
    section: ReplySection
    files: list[File]


def reply_section(view: TrackingView, *, thanked: bool) -> ReplySection | None:
    """The form while the case waits for the citizen, thanks just after they replied, else nothing."""
    if thanked:
        return ReplySection(done=Texts(view.language)("page.reply.thanks"))
    if view.status.final or view.status.turn != "citizen":
        return None
    return ReplySection()


async def typed_reply(request: Request) -> TypedReply:
    """What the form posted: the code, the key, the message and the files chosen (an unreadable form is
    an empty one: the page says what is missing)."""
    try:
        form = await request.form()
    except HTTPException:
        return TypedReply("", ReplySection(), [])
    code, key, message = (form.get(name) for name in ("code", "idempotency_key", "message"))
    files: list[File] = []
    for upload in form.getlist("documents"):
        if isinstance(upload, UploadFile) and (upload.filename or (upload.size or 0) > 0):
            content = await upload.read()  # bounded by the route's body limit
            files.append((upload.filename or "document", content, "application/octet-stream"))
    section = ReplySection(
        key=_key(key),
        message=message if isinstance(message, str) else "",
        files_sent=bool(files),
    )
    return TypedReply(code if isinstance(code, str) else "", section, files)


def _key(typed: object) -> str:
    """The key the form was drawn with; a form posted without one still records one reply."""
    try:
        return str(uuid.UUID(typed if isinstance(typed, str) else ""))
    except ValueError:
        return str(uuid.uuid4())


async def send_reply(request: Request, view: TrackingView, typed: TypedReply) -> httpx.Response | None:
    """intake's answer (None if it cannot be reached), in the visitor's language. The type of each file
    is read from its content by intake: tracking declares none."""
    settings: TrackingSettings = request.app.state.settings
    http: httpx.AsyncClient = request.app.state.http
    reply = {"tracking_code": view.tracking_code, "message": typed.section.message}
    parts: list[tuple[str, tuple[str | None, str | bytes, str]]] = [
        ("reply", (None, json.dumps(reply), "application/json"))
    ]
    parts += [("documents", file) for file in typed.files]
    try:
        return await http.post(
            f"{settings.intake_url.rstrip('/')}/v1/replies",
            params={"lang": view.language},
            files=parts,
            headers={"Idempotency-Key": typed.section.key, "X-Forwarded-For": client_of(request)},
            timeout=INTAKE_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        log.warning("intake cannot be reached for a reply: %s", type(exc).__name__)
        return None


def wrong(typed: ReplySection, *errors: ReplyError) -> ReplySection:
    """The form again, with what was typed (the same key: sending it again is the same reply)."""
    return ReplySection(key=typed.key, message=typed.message, errors=errors, files_sent=typed.files_sent)


def closed(lang: str) -> ReplySection:
    """A reply posted while the case waits for none (answered already, or decided): no form."""
    return ReplySection(errors=(ReplyError(Texts(lang)("page.reply.error.not_waiting"), None),), closed=True)


def refusal(
    lang: str, typed: ReplySection, answer: httpx.Response | None
) -> tuple[ReplySection, int, dict[str, str]]:
    """What the page shows when intake did not record the reply: the section, the status, the headers
    (a 503 without `Retry-After`: the page adds its own)."""
    t = Texts(lang)
    problem = intake_problem(answer, what="reply")
    if answer is None or problem is None:  # intake unreachable, or a fault on its side: nothing recorded
        return wrong(typed, ReplyError(t("page.reply.error.unavailable"), None)), 503, {}
    errors = problem.get("errors")
    items = [
        ReplyError(str(e.get("message") or ""), TARGETS.get(str(e.get("field"))))
        for e in (errors if isinstance(errors, list) else [])
        if isinstance(e, dict) and e.get("message")
    ]
    if not items:
        items = [ReplyError(str(problem.get("detail") or t("page.reply.error.unavailable")), None)]
    headers = {"Retry-After": answer.headers["Retry-After"]} if "Retry-After" in answer.headers else {}
    return wrong(typed, *items), answer.status_code, headers
