"""Citizens send files with a procedure or a reply: the type is read from the content, images lose their
metadata, sizes and counts are limited with clear errors, the files are kept in an object store (a local
folder, or S3: a real SeaweedFS server here) and named in the case by their ids, never their content."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from devtools.servers import SeaweedServer, free_port
from services.intake import documents, domain
from services.intake.app import create_app as create_intake
from shared.objectstore import ObjectStore, S3Bucket
from shared.procedures import CatalogueError, load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR, DEVELOPMENT_INTERNAL_TOKEN
from tests.builders import make_case
from tests.conftest import Env, _client, intake_settings
from tests.waiting import query, scalar

INTERNAL = {"Authorization": f"Bearer {DEVELOPMENT_INTERNAL_TOKEN}"}
GPS = 0x8825


# --- Files, as a citizen's phone or scanner makes them ----------------------------------------------------


def pdf(size: int = 0) -> bytes:
    body = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n"
    return body + b"%" * max(0, size - len(body) - 6) + b"\n%%EOF"


def photo_with_gps(fmt: str = "JPEG") -> bytes:
    """A 40x30 photo the camera says to turn a quarter (orientation 6), with its GPS position and maker."""
    image = Image.new("RGB", (40, 30), (200, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    exif[GPS] = {1: "N", 2: (45.0, 45.0, 28.0), 3: "E", 4: (4.0, 49.0, 55.0)}
    out = io.BytesIO()
    image.save(out, fmt, exif=exif)
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 200, 10)).save(out, "PNG")
    return out.getvalue()


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"This program"


Part = tuple[str, tuple[str | None, str | bytes, str]]


def multipart(case: dict[str, Any], **files: list[tuple[str, bytes, str]]) -> dict[str, Any]:
    """httpx's arguments for a multipart submission: the JSON as the part `case`, the files beside it."""
    parts: list[Part] = [("case", (None, json.dumps(case), "application/json"))]
    parts += [(field, item) for field, items in files.items() for item in items]
    return {"files": parts}


def report(**data: Any) -> dict[str, Any]:
    return make_case("signalement-voirie", **data)


def assert_no_metadata(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    exif = image.getexif()
    assert not exif.get_ifd(GPS) and GPS not in exif and 0x010F not in exif and 0x0112 not in exif
    assert b"PhoneMaker" not in content
    return image


# --- Servers and apps ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A real S3 server (SeaweedFS) for the module, on free ports."""
    server = SeaweedServer(data=tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.stop()


def s3_settings(server: SeaweedServer) -> dict[str, Any]:
    return {
        "documents_store": "s3",
        "s3_endpoint": server.endpoint,
        "s3_bucket": server.bucket,
        "s3_region": server.region,
        "s3_access_key_id": server.access_key_id,
        "s3_secret_access_key": server.secret_access_key,
    }


def s3_store(server: SeaweedServer) -> ObjectStore:
    return ObjectStore(
        S3Bucket(
            bucket=server.bucket,
            region=server.region,
            endpoint=server.endpoint,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
        )
    )


@pytest.fixture
async def s3_intake(env: Env, seaweed: SeaweedServer) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_intake(intake_settings(env, **s3_settings(seaweed)))):
        yield client


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "documents"


@pytest.fixture
async def local_intake(env: Env, folder: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_intake(intake_settings(env, documents_dir=folder))):
        yield client


def stored_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def form_data(env: Env, case_id: str) -> dict[str, Any]:
    text = await scalar(
        env.database_url, "SELECT data::text FROM intake.cases WHERE case_id = $1", uuid.UUID(case_id)
    )
    data: dict[str, Any] = json.loads(text)
    return data


async def document_rows(env: Env, case_id: str) -> list[dict[str, Any]]:
    rows = await query(
        env.database_url,
        "SELECT * FROM intake.documents WHERE case_id = $1 ORDER BY created_at, position",
        uuid.UUID(case_id),
    )
    return [dict(r) for r in rows]


# --- The files are kept, named by their ids -------------------------------------------------------------


async def test_a_plan_and_a_photo_are_kept_in_s3_named_in_the_form_by_their_ids(
    s3_intake: httpx.AsyncClient, env: Env, seaweed: SeaweedServer
) -> None:
    plan, photo = pdf(), photo_with_gps()
    answer = await s3_intake.post(
        "/v1/cases",
        **multipart(
            make_case(),
            plans=[("plan de masse.pdf", plan, "application/pdf"), ("façade.jpg", photo, "image/jpeg")],
        ),
    )
    assert answer.status_code == 201, answer.text
    case_id = answer.json()["case_id"]

    rows = await document_rows(env, case_id)
    assert [(r["field"], r["filename"], r["content_type"]) for r in rows] == [
        ("plans", "plan de masse.pdf", "application/pdf"),
        ("plans", "façade.jpg", "image/jpeg"),
    ]
    data = await form_data(env, case_id)
    assert data["plans"] == [r["document_id"] for r in rows]
    assert all(r["document_id"].startswith("doc_") and r["reply_id"] is None for r in rows)

    store = s3_store(seaweed)
    assert await store.get(rows[0]["stored_key"]) == plan  # a PDF is kept as sent
    kept = await store.get(rows[1]["stored_key"])
    assert rows[1]["size"] == len(kept) and kept != photo
    assert assert_no_metadata(kept).size == (30, 40)  # upright, as the camera said, and nothing else

    # Never on the bus: the events hold neither the ids nor the names.
    events = await scalar(env.database_url, "SELECT string_agg(envelope::text, '') FROM intake.events")
    assert "doc_" not in events and "plan de masse" not in events and "plans" not in events


async def test_a_photo_of_a_street_light_loses_its_gps_position_in_a_local_folder(
    local_intake: httpx.AsyncClient, env: Env, folder: Path
) -> None:
    answer = await local_intake.post(
        "/v1/cases", **multipart(report(), photo=[("IMG_2041.JPG", photo_with_gps(), "image/jpeg")])
    )
    assert answer.status_code == 201, answer.text
    (row,) = await document_rows(env, answer.json()["case_id"])
    assert (row["field"], row["filename"], row["content_type"]) == ("photo", "IMG_2041.jpg", "image/jpeg")
    (path,) = stored_files(folder)
    assert path == folder / row["stored_key"]
    assert_no_metadata(path.read_bytes())

    internal = await local_intake.get(
        f"/internal/v1/documents/{row['document_id']}",
        params={"case_id": answer.json()["case_id"]},
        headers=INTERNAL,
    )
    assert internal.status_code == 200 and internal.content == path.read_bytes()
    assert internal.headers["content-type"] == "image/jpeg"
    assert internal.headers["x-content-type-options"] == "nosniff"
    assert internal.headers["content-disposition"].startswith("attachment;")


async def test_a_png_image_also_loses_its_text_chunks() -> None:
    image = Image.new("RGB", (10, 10))
    info = PngInfo()
    info.add_text("Author", "Camille Martin")
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info, exif=Image.Exif())
    rule = documents.FileRule("photo", ("image/png",), 1_000_000, 1, where="data.photo")
    checked = documents.check_file(rule, "../../etc/plan\x00.png", out.getvalue())
    assert b"Camille" not in checked.data and checked.filename == "plan.png"


async def test_a_png_named_pdf_is_taken_as_the_png_it_is_where_png_is_accepted(
    local_intake: httpx.AsyncClient, env: Env
) -> None:
    answer = await local_intake.post(
        "/v1/cases", **multipart(make_case(), plans=[("plan.pdf", png(), "application/pdf")])
    )
    assert answer.status_code == 201, answer.text
    (row,) = await document_rows(env, answer.json()["case_id"])
    assert (row["content_type"], row["filename"]) == ("image/png", "plan.png")


async def test_the_json_api_without_files_works_as_before_and_names_no_document(
    local_intake: httpx.AsyncClient, env: Env, folder: Path
) -> None:
    answer = await local_intake.post("/v1/cases", json=make_case())
    assert answer.status_code == 201, answer.text
    data = await form_data(env, answer.json()["case_id"])
    assert "plans" not in data and stored_files(folder) == []
    procedure = (await local_intake.get("/v1/procedures/permis-construire?lang=en")).json()
    plans = next(f for f in procedure["fields"] if f["name"] == "plans")
    assert (plans["type"], plans["accept"], plans["max_bytes"], plans["max_files"]) == (
        "file",
        ["application/pdf", "image/jpeg", "image/png"],
        10_000_000,
        8,
    )


# --- What is refused, and how it is said -----------------------------------------------------------------


async def _refused(client: httpx.AsyncClient, case: dict[str, Any], lang: str = "en", **files: Any) -> Any:
    answer = await client.post("/v1/cases", headers={"Accept-Language": lang}, **multipart(case, **files))
    assert answer.status_code == 422, answer.text
    return answer.json()["errors"]


async def test_files_that_are_not_what_the_field_takes_are_refused_naming_the_field(
    local_intake: httpx.AsyncClient, env: Env, folder: Path
) -> None:
    exe = await _refused(local_intake, report(), photo=[("lampadaire.jpg", EXE, "image/jpeg")])
    assert exe == [
        {
            "field": "data.photo",
            "message": '"lampadaire.jpg" is not a file this field takes (JPEG, PNG): what counts is its '
            "content, not its name.",
        }
    ]
    a_pdf = await _refused(local_intake, report(), "fr", photo=[("photo.jpg", pdf(), "image/jpeg")])
    assert a_pdf[0]["field"] == "data.photo" and "n'est pas un fichier accepté ici" in a_pdf[0]["message"]
    too_big = await _refused(
        local_intake, make_case(), plans=[("plan.pdf", pdf(10_000_001), "application/pdf")]
    )
    assert too_big == [{"field": "data.plans", "message": '"plan.pdf" is too large: at most 10 MB per file.'}]
    photos = [(f"p{i}.jpg", photo_with_gps(), "image/jpeg") for i in range(4)]
    too_many = await _refused(local_intake, report(), photo=photos)
    assert too_many == [{"field": "data.photo", "message": "At most 3 file(s) here (4 sent)."}]
    wrong = await _refused(local_intake, report(), plans=[("plan.pdf", pdf(), "application/pdf")])
    assert wrong == [
        {"field": "plans", "message": '"plans" takes no file here. Parts that take files: photo.'}
    ]
    empty = await _refused(local_intake, report(), photo=[("vide.jpg", b"", "image/jpeg")])
    assert empty[0]["message"] == '"vide.jpg" is empty.'
    in_data = await _refused(local_intake, report(photo=["doc_" + "0" * 32]))
    assert in_data[0]["field"] == "data.photo" and "multipart/form-data" in in_data[0]["message"]
    # Every problem at once, the form's and the files': and nothing was kept, nothing recorded.
    both = await _refused(local_intake, report(description=""), photo=[("x.jpg", EXE, "image/jpeg")])
    assert {e["field"] for e in both} == {"data.description", "data.photo"}
    assert stored_files(folder) == []
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.cases") == 0


async def test_a_multipart_request_without_its_json_part_is_told_what_to_send(
    local_intake: httpx.AsyncClient,
) -> None:
    answer = await local_intake.post(
        "/v1/cases", files=[("photo", ("a.jpg", photo_with_gps(), "image/jpeg"))]
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "case"
    bad_json = await local_intake.post("/v1/cases", files=[("case", (None, "{not json", "application/json"))])
    assert bad_json.status_code == 400 and bad_json.json()["type"] == "error.malformed_json"
    as_file = await local_intake.post(
        "/v1/cases", files=[("case", ("case.json", json.dumps(report()).encode(), "application/json"))]
    )
    assert as_file.status_code == 201, as_file.text  # `curl -F case=@case.json` works too


async def test_uploads_have_their_own_body_limit_only_where_files_go(env: Env, folder: Path) -> None:
    settings = intake_settings(env, documents_dir=folder, upload_max_body_bytes=81_000_000)
    async for client in _client(create_intake(settings)):
        big = [("plan.pdf", pdf(9_000_000), "application/pdf")] * 8
        too_much = await client.post("/v1/cases", **multipart(make_case(), plans=big + big[:1]))
        assert too_much.status_code == 413 and too_much.json()["type"] == "intake.upload_too_large"
        allowed = await client.post("/v1/cases", **multipart(make_case(), plans=big[:2]))
        assert allowed.status_code == 201, allowed.text
        # JSON keeps the usual 64 KiB, on this route too, and multipart elsewhere as well.
        padded = make_case(project_description="x" * 70_000)
        assert (await client.post("/v1/cases", json=padded)).status_code == 413
        rating = await client.post("/v1/ratings", files=[("x", ("x.pdf", pdf(70_000), "application/pdf"))])
        assert rating.status_code == 413 and rating.json()["type"] == "error.body_too_large"
    assert len(stored_files(folder)) == 2


def test_start_up_refuses_forms_whose_files_cannot_fit_one_request(env: Env, folder: Path) -> None:
    settings = intake_settings(env, documents_dir=folder, upload_max_body_bytes=50_000_000)
    with pytest.raises(ValueError, match="INTAKE_UPLOAD_MAX_BODY_BYTES to at least 80065536"):
        create_intake(settings)


# --- Never a half-written case ------------------------------------------------------------------------


async def test_when_the_case_is_not_recorded_its_files_are_deleted_again(
    local_intake: httpx.AsyncClient, env: Env, folder: Path
) -> None:
    key = {"Idempotency-Key": "one-form"}
    first = await local_intake.post("/v1/cases", headers=key, json=make_case())
    assert first.status_code == 201
    # The same key for another request: the transaction rolls back after the files were stored.
    reused = await local_intake.post(
        "/v1/cases", headers=key, **multipart(make_case(), plans=[("plan.pdf", pdf(), "application/pdf")])
    )
    assert reused.status_code == 422 and reused.json()["type"] == "error.idempotency_key_reused"
    assert stored_files(folder) == []
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.documents") == 0


async def test_a_retried_upload_records_its_files_once(
    local_intake: httpx.AsyncClient, env: Env, folder: Path
) -> None:
    request = multipart(make_case(), plans=[("plan.pdf", pdf(), "application/pdf")])
    key = {"Idempotency-Key": "retried-upload"}
    first = await local_intake.post("/v1/cases", headers=key, **request)
    again = await local_intake.post("/v1/cases", headers=key, **request)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert len(stored_files(folder)) == 1  # the retry's copy went again
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.documents") == 1


async def test_a_store_that_does_not_answer_is_a_503_and_nothing_is_recorded(env: Env) -> None:
    dead = {
        "documents_store": "s3",
        "s3_endpoint": f"http://127.0.0.1:{free_port()}",
        "s3_bucket": "documents",
        "s3_access_key_id": "key",
        "s3_secret_access_key": "secret",
    }
    async for client in _client(create_intake(intake_settings(env, **dead))):
        answer = await client.post(
            "/v1/cases", **multipart(report(), photo=[("a.jpg", photo_with_gps(), "image/jpeg")])
        )
        assert answer.status_code == 503, answer.text
        assert answer.json()["type"] == "intake.documents_unavailable" and answer.headers["retry-after"]
        assert "Nothing was recorded" in answer.json()["detail"] or "Rien n'a été" in answer.json()["detail"]
        assert (await client.post("/v1/cases", json=report())).status_code == 201  # no file, no store
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.documents") == 0
    gc.collect()  # drop the failed S3 client now: its runtime must not outlive the interpreter's exit
    await asyncio.sleep(0.5)


# --- A reply with a document ---------------------------------------------------------------------------


async def test_a_reply_brings_files_beside_its_links(local_intake: httpx.AsyncClient, env: Env) -> None:
    case = (await local_intake.post("/v1/cases", json=make_case())).json()
    reply = {
        "tracking_code": case["tracking_code"],
        "message": "Voici le plan de masse signé.",
        "documents": ["https://depot.example.org/plan.pdf"],
    }
    parts: list[Part] = [("reply", (None, json.dumps(reply), "application/json"))]
    parts += [("documents", ("plan signé.pdf", pdf(), "application/pdf"))]
    answer = await local_intake.post("/v1/replies", files=parts)
    assert answer.status_code == 202, answer.text
    (row,) = await document_rows(env, case["case_id"])
    assert (row["field"], row["reply_id"], row["filename"]) == (
        "documents",
        uuid.UUID(answer.json()["reply_id"]),
        "plan signé.pdf",
    )
    events = await query(env.database_url, "SELECT envelope::text FROM intake.events ORDER BY version")
    assert json.loads(events[-1][0])["data"]["documents"] == 2  # a link and a file; neither is named
    case_file = (await local_intake.get(f"/internal/v1/cases/{case['case_id']}", headers=INTERNAL)).json()
    assert [d["document_id"] for d in case_file["documents"]] == [row["document_id"]]

    wrong = await local_intake.post(
        "/v1/replies",
        files=[
            ("reply", (None, json.dumps(reply), "application/json")),
            ("plans", ("x.pdf", pdf(), "application/pdf")),
        ],
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "plans"


async def test_intakes_internal_document_route_answers_only_for_the_documents_case(
    local_intake: httpx.AsyncClient,
) -> None:
    answer = await local_intake.post(
        "/v1/cases", **multipart(make_case(), plans=[("plan.pdf", pdf(), "application/pdf")])
    )
    case_file = (
        await local_intake.get(f"/internal/v1/cases/{answer.json()['case_id']}", headers=INTERNAL)
    ).json()
    document_id = case_file["documents"][0]["document_id"]
    other = (await local_intake.post("/v1/cases", json=make_case())).json()["case_id"]
    path = f"/internal/v1/documents/{document_id}"
    assert (await local_intake.get(path, params={"case_id": other}, headers=INTERNAL)).status_code == 404
    assert (await local_intake.get(path, params={"case_id": other})).status_code == 401
    mine = await local_intake.get(path, params={"case_id": answer.json()["case_id"]}, headers=INTERNAL)
    assert mine.status_code == 200 and mine.content == pdf()


# --- Definitions -------------------------------------------------------------------------------------


def _definition_with(tmp_path: Path, field: dict[str, Any]) -> Path:
    source = DEFAULT_PROCEDURES_DIR / "signalement-voirie" / "v1.yaml"
    definition = yaml.safe_load(source.read_text(encoding="utf-8"))
    definition["fields"].append({"name": "scan", "label": definition["fields"][0]["label"], **field})
    folder = tmp_path / "procedures" / "signalement-voirie"
    folder.mkdir(parents=True)
    (folder / "v1.yaml").write_text(yaml.safe_dump(definition, allow_unicode=True), encoding="utf-8")
    return tmp_path / "procedures"


@pytest.mark.parametrize(
    ("field", "says"),
    [
        ({"type": "file", "accept": ["image/png"], "max_bytes": 10, "public": True}, "cannot be public"),
        ({"type": "file", "accept": ["text/html"], "max_bytes": 10}, "cannot check files of type text/html"),
        ({"type": "file", "accept": ["image/png"]}, "needs `accept` (its types) and `max_bytes`"),
        ({"type": "file", "accept": ["image/png"], "max_bytes": 10, "max_files": 500}, "max_files"),
        ({"type": "string", "max_length": 10, "accept": ["image/png"]}, "only go with type file"),
    ],
)
def test_file_fields_are_checked_at_start_up(tmp_path: Path, field: dict[str, Any], says: str) -> None:
    with pytest.raises(CatalogueError, match="fields") as refused:
        load_catalogue(_definition_with(tmp_path, field))
    assert says in str(refused.value)


def test_a_required_file_field_without_a_file_says_what_to_attach(tmp_path: Path) -> None:
    field = {"type": "file", "accept": ["application/pdf"], "max_bytes": 1000}
    procedure = load_catalogue(_definition_with(tmp_path, field)).latest("signalement-voirie")
    assert procedure is not None
    _, errors = domain.check_data(procedure, {}, "en")
    assert {"field": "data.scan", "message": "Attach at least one file (PDF)."} in errors
    data, errors = domain.check_data(procedure, {}, "en", documents={"scan": ["doc_" + "1" * 32]})
    assert data["scan"] == ["doc_" + "1" * 32] and not [e for e in errors if e["field"] == "data.scan"]
