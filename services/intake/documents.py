"""Citizens' files: a plan, a photo, a document sent with a reply.

A file is checked before anything is kept: its type from its content (puremagic, and Pillow for images),
never from its name or the type the browser declared; its size and the number of files against the
field's definition (`type: file`, `accept`, `max_bytes`, `max_files`). Images are decoded and encoded
again, upright and without any metadata (EXIF, GPS position, camera, comments, colour profile). Errors are
`{field, message}` in the citizen's language, like the form's.

`receive(rule, uploads, lang)` checks one field's files, `receive_fields(procedure, uploads, lang)` those
of a whole form: the JSON API (multipart parts, see `MultipartJson`) and the HTML form both call them.
Checked files are stored (`kept`) before the case or the reply that names them is recorded; if recording
fails they are deleted again, so that no record names a missing file. A file is named in the form's
data by its document id (`doc_...`), never its content; it never travels on the bus.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import logging
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, cast

import puremagic
from fastapi import Depends, Request, Response
from PIL import Image, ImageOps, UnidentifiedImageError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http import BodySizeLimit, language_of, media_type_of, problem, route_template
from shared.i18n import translate
from shared.objectstore import ObjectStore, ObjectStoreError, StoreRefused, StoreUnavailable
from shared.procedures import FILE_TYPES, Catalogue, FieldType, FormField, Procedure, type_names
from shared.telemetry import meter

log = logging.getLogger(__name__)
documents_stored = meter.create_counter(
    "suivi.documents.stored", unit="{document}", description="Citizens' files kept in the object store"
)
FieldError = dict[str, str]
Uploads = dict[str, list[UploadFile]]
DOCUMENT_ID = r"^doc_[0-9a-f]{32}$"
# Images are decoded to be cleaned: a bound on their pixels bounds the memory it takes (~3 bytes each).
MAX_PIXELS = 40_000_000
_IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}


@dataclass(frozen=True)
class FileRule:
    """What a file field takes: its types, the size of each file, how many files."""

    name: str
    accept: tuple[str, ...]
    max_bytes: int
    max_files: int
    where: str  # the error's `field`: `data.plans`, `documents`

    @classmethod
    def of(cls, f: FormField) -> FileRule:
        assert f.type is FieldType.FILE and f.max_bytes is not None, "checked at start-up"
        return cls(f.name, f.accept, f.max_bytes, f.files_at_most, where=f"data.{f.name}")

    @property
    def accepted(self) -> str:
        return type_names(self.accept)


# A citizen's reply may bring documents too: PDF or images, as a building permit's plans.
REPLY_DOCUMENTS = FileRule("documents", tuple(FILE_TYPES), 10_000_000, 8, where="documents")


@dataclass(frozen=True)
class Checked:
    """A file that passed its checks: the bytes as they will be kept, and what the record says of them."""

    document_id: str
    field: str
    filename: str
    content_type: str
    data: bytes = dataclasses.field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def key(self) -> str:
        """Where the store keeps it (a bucket, or a folder, of its own)."""
        return self.document_id


@dataclass(frozen=True)
class Received:
    """A request's files: those that passed their checks, and every problem found with the others."""

    checked: list[Checked] = dataclasses.field(default_factory=list)
    errors: list[FieldError] = dataclasses.field(default_factory=list)

    def __add__(self, other: Received) -> Received:
        return Received(self.checked + other.checked, self.errors + other.errors)


NO_FILES = Received()


class NotAccepted(ValueError):
    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key, self.params = key, params


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f}".removesuffix(".0")


def _shown(filename: str | None) -> str:
    """A file name as sent, safe to show: its last path part, printable, one space at a time."""
    name = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(c for c in name if c.isprintable() and c not in '<>:"|?*')
    return re.sub(r"\s+", " ", name).strip(" .")[:120]


def sanitized(filename: str | None, content_type: str) -> str:
    """The name a file is kept and downloaded under: as sent (see `_shown`), at most 100 characters,
    ending with the extension of the type its content has (a PNG sent as `plan.pdf` is `plan.png`)."""
    name = _shown(filename)
    stem = (name.rsplit(".", 1)[0] if "." in name else name).strip(" .")
    return f"{stem[:96] or 'document'}{FILE_TYPES[content_type]}"


def _type_of(content: bytes) -> str | None:
    try:
        found = puremagic.from_string(content, mime=True)
    except (puremagic.PureError, ValueError):
        return None
    return found or None


def _clean_image(content: bytes, content_type: str) -> bytes:
    """The image, upright, encoded again with nothing but its pixels."""
    unreadable = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)
    try:
        image = Image.open(io.BytesIO(content), formats=[_IMAGE_FORMATS[content_type]])
    except unreadable as exc:
        raise NotAccepted("field.file_unreadable") from exc
    with image:
        if image.width * image.height > MAX_PIXELS:  # before its pixels are decoded
            raise NotAccepted("field.file_too_many_pixels", max=MAX_PIXELS // 1_000_000)
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)  # a copy, turned as the camera said
        except unreadable as exc:
            raise NotAccepted("field.file_unreadable") from exc
    upright.info = {}  # EXIF (GPS, camera, time), XMP, comments, ICC profile: none of it is kept
    out = io.BytesIO()
    if content_type == "image/jpeg":
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
        upright.save(out, "JPEG", quality=90, optimize=True)
    else:
        upright.save(out, "PNG")
    return out.getvalue()


def check_file(rule: FileRule, filename: str | None, content: bytes) -> Checked:
    """The file as it will be kept, or `NotAccepted`. CPU-bound (images): run it in a thread."""
    if not content:
        raise NotAccepted("field.file_empty")
    if len(content) > rule.max_bytes:
        raise NotAccepted("field.file_too_big", max=_megabytes(rule.max_bytes))
    content_type = _type_of(content)
    if content_type not in rule.accept:
        raise NotAccepted("field.file_type", accepted=rule.accepted)
    assert content_type is not None
    if content_type in _IMAGE_FORMATS:
        content = _clean_image(content, content_type)
    elif b"%PDF-" not in content[:1024]:
        raise NotAccepted("field.file_type", accepted=rule.accepted)
    return Checked(
        document_id=f"doc_{uuid.uuid4().hex}",
        field=rule.name,
        filename=sanitized(filename, content_type),
        content_type=content_type,
        data=content,
    )


def _given(uploads: Sequence[UploadFile]) -> list[UploadFile]:
    """An HTML form's empty file input still sends a part, with no name and no content."""
    return [u for u in uploads if u.filename or (u.size or 0) > 0]


async def receive(rule: FileRule | FormField, uploads: Sequence[UploadFile], lang: str) -> Received:
    """One field's files, checked: the files as they will be kept, and every problem found."""
    rule = rule if isinstance(rule, FileRule) else FileRule.of(rule)
    given = _given(uploads)
    if len(given) > rule.max_files:
        message = translate("field.file_too_many", lang, max=rule.max_files, count=len(given))
        return Received(errors=[{"field": rule.where, "message": message}])
    checked: list[Checked] = []
    errors: list[FieldError] = []
    for upload in given:
        content = await upload.read(rule.max_bytes + 1)
        try:
            checked.append(await asyncio.to_thread(check_file, rule, upload.filename, content))
        except NotAccepted as exc:
            message = translate(exc.key, lang, filename=_shown(upload.filename) or "-", **exc.params)
            errors.append({"field": rule.where, "message": message})
    return Received(checked, errors)


async def receive_fields(
    procedure: Procedure, uploads: Mapping[str, Sequence[UploadFile]], lang: str
) -> Received:
    """The files of a form, field by field; a file sent for a field that takes none is an error."""
    rules = [FileRule.of(f) for f in procedure.fields if f.type is FieldType.FILE]
    return await _receive_all(rules, uploads, lang)


async def receive_reply(uploads: Mapping[str, Sequence[UploadFile]], lang: str) -> Received:
    """The files sent with a reply (parts named `documents`)."""
    return await _receive_all([REPLY_DOCUMENTS], uploads, lang)


async def _receive_all(
    rules: Sequence[FileRule], uploads: Mapping[str, Sequence[UploadFile]], lang: str
) -> Received:
    names = sorted(rule.name for rule in rules)
    received = Received(
        errors=[
            _not_here(name, names, lang) for name in uploads if name not in names and _given(uploads[name])
        ]
    )
    for rule in rules:
        received += await receive(rule, uploads.get(rule.name, ()), lang)
    return received


def _not_here(name: str, expected: Sequence[str], lang: str) -> FieldError:
    message = translate("field.file_not_here", lang, name=name, expected=", ".join(expected) or "-")
    return {"field": name, "message": message}


def ids_by_field(documents: Sequence[Checked]) -> dict[str, list[str]]:
    by_field: dict[str, list[str]] = {}
    for d in documents:
        by_field.setdefault(d.field, []).append(d.document_id)
    return by_field


# --- Keeping them -------------------------------------------------------------------------------------


@dataclass
class Kept:
    store: ObjectStore | None
    documents: Sequence[Checked]

    async def discard(self) -> None:
        """Delete them again (best effort: a file left behind is an orphan no record names)."""
        if not self.documents:
            return
        assert self.store is not None, "files were stored"
        for d in self.documents:
            try:
                await self.store.delete(d.key)
            except ObjectStoreError as exc:
                log.warning("could not delete %s, an orphan now: %s", d.key, exc)


@asynccontextmanager
async def kept(store: ObjectStore | None, documents: Sequence[Checked]) -> AsyncIterator[Kept]:
    """Store the files, then run the block that records them; if it fails, delete the files again."""
    stored: list[Checked] = []
    try:
        for d in documents:
            assert store is not None, "files need a store"
            await store.put(d.key, d.data, d.content_type)
            stored.append(d)
            documents_stored.add(1, {"field": d.field, "content_type": d.content_type})
        yield Kept(store, stored)
    except BaseException:
        await Kept(store, stored).discard()
        raise


async def _store(request: Request) -> ObjectStore:
    return cast(ObjectStore, request.app.state.documents)


def uploads_of(request: Request) -> Uploads:
    """The files of a multipart request (`MultipartJson`), by part name; none for a JSON request."""
    return cast(Uploads, getattr(request.state, "uploads", {}))


async def _uploads(request: Request) -> Uploads:
    return uploads_of(request)


DocumentStore = Annotated[ObjectStore, Depends(_store)]
# The files of a multipart request (`MultipartJson`), by part name; none for a JSON request.
UploadsDep = Annotated[Uploads, Depends(_uploads)]


# --- Multipart requests -------------------------------------------------------------------------------


class MultipartJson:
    """On the routes given, a `multipart/form-data` request is the route's JSON request: its part named
    as `routes` says (`case`, `reply`) is the JSON body, the other parts are files, for the route to
    take from `request.state.uploads`. Any other request passes as it is.

    Inside `RouteBodyLimits` (the request is bounded) and outside `JsonDepthLimit` (the JSON part is
    checked like any JSON body)."""

    def __init__(self, app: ASGIApp, *, routes: Mapping[str, str], json_limit: int, max_part: int) -> None:
        self.app, self.routes, self.json_limit, self.max_part = app, routes, json_limit, max_part

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        part = self.routes.get(scope["path"].rstrip("/")) if scope["type"] == "http" else None
        if part is None or media_type_of(scope) != "multipart/form-data":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            # Parts are counted and sized by the checks, which name the field: the parser only bounds a
            # part sent without a file name (held in memory), at the largest file a field takes.
            form = await request.form(max_part_size=self.max_part)
        except ClientDisconnect:
            return  # over the body limit (answered already), or the client left
        except HTTPException:
            await problem(400, "intake.upload_unreadable", language_of(request))(scope, receive, send)
            return
        try:
            await self._forward(scope, send, part, form, request)
        finally:
            await form.close()

    async def _forward(self, scope: Scope, send: Send, part: str, form: FormData, request: Request) -> None:
        lang = language_of(request)
        value = form.get(part)
        body = (await value.read(self.json_limit + 1)) if isinstance(value, UploadFile) else value
        if not body:
            errors = [{"field": part, "message": translate("intake.upload_json_missing", lang, part=part)}]
            await problem(422, "error.invalid_request", lang, errors=errors)(scope, request.receive, send)
            return
        raw = body.encode() if isinstance(body, str) else body
        if len(raw) > self.json_limit:
            answer = problem(413, "error.body_too_large", lang, size=len(raw), limit=self.json_limit)
            await answer(scope, request.receive, send)
            return
        uploads: Uploads = {}
        for name, item in form.multi_items():
            if name != part:
                uploads.setdefault(name, []).append(
                    item if isinstance(item, UploadFile) else _text_part(item)
                )
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        state = {**scope.get("state", {}), "uploads": uploads}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app({**scope, "headers": headers, "state": state}, replay, send)


def _text_part(value: str) -> UploadFile:
    """A part sent without a file name (`-F plans=text`): seen as a nameless file, refused as such."""
    return UploadFile(io.BytesIO(value.encode("utf-8", "replace")), size=len(value), filename=None)


def request_hash_part(documents: Sequence[Checked]) -> list[list[str]]:
    """What of the files makes a retry the same request (for `Idempotency-Key`)."""
    return [[d.field, d.sha256] for d in documents]


def upload_openapi(part: str, model: str, files: str) -> dict[str, object]:
    """The multipart form of a JSON route's request body, for its OpenAPI document: the JSON body as the
    part `part`, and the files, in parts named as `files` says."""
    binary = {"type": "array", "items": {"type": "string", "format": "binary"}, "description": files}
    schema = {
        "type": "object",
        "required": [part],
        "properties": {part: {"$ref": f"#/components/schemas/{model}"}},
        "additionalProperties": binary,
    }
    multipart = {"schema": schema, "encoding": {part: {"contentType": "application/json"}}}
    return {"requestBody": {"content": {"multipart/form-data": multipart}}}


# --- The app's wiring ----------------------------------------------------------------------------------

# The routes that take files, and the name of the part holding their JSON body.
UPLOAD_ROUTES = {"/v1/cases": "case", "/v1/replies": "reply"}


def largest_upload(catalogue: Catalogue) -> int:
    """The most bytes of files one request may bring: the largest form's, or a reply's."""
    forms = [
        sum((f.max_bytes or 0) * f.files_at_most for f in p.fields if f.type is FieldType.FILE)
        for p in catalogue.all_latest()
    ]
    return max([*forms, REPLY_DOCUMENTS.max_bytes * REPLY_DOCUMENTS.max_files])


def largest_file(catalogue: Catalogue) -> int:
    """The largest file any field takes."""
    sizes = [f.max_bytes or 0 for p in catalogue.all_latest() for f in p.fields if f.type is FieldType.FILE]
    return max([*sizes, REPLY_DOCUMENTS.max_bytes])


class UploadBodyLimit(BodySizeLimit):
    """The limit of a request with files, whose 413 says what each field takes."""

    refusal = "intake.upload_too_large"


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: the object store is unavailable: %s", request.method, route_template(request), exc)
    lang = language_of(request)
    return problem(503, "intake.documents_unavailable", lang, headers={"Retry-After": "5"})


async def _store_refused(request: Request, exc: Exception) -> Response:
    log.error("%s %s: the object store refused intake: %s", request.method, route_template(request), exc)
    return problem(503, "intake.documents_refused", language_of(request), headers={"Retry-After": "60"})


# Nothing was recorded when the store fails: a 503, and the client may retry.
STORE_ERRORS = {StoreUnavailable: _store_unavailable, StoreRefused: _store_refused}
