"""An agent of the case's service sees the citizen's files in the case view and downloads them through
workflow (read from intake at each download, each download logged); nobody else gets them."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake.app import create_app as create_intake
from tests.builders import make_case
from tests.conftest import Env, Tokens, _client, intake_settings, reach_intake_in_process, workflow_app
from tests.intake.test_documents import (
    Part,
    assert_no_metadata,
    multipart,
    pdf,
    photo_with_gps,
    s3_settings,
    s3_store,
    seaweed,
)
from tests.waiting import eventually, query

__all__ = ["seaweed"]  # the module's own SeaweedFS server (a fixture)
URBANISME = ("agent", "urbanisme")


async def _pair(
    env: Env, issuer: Path, **intake_overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    async for intake in _client(create_intake(intake_settings(env, **intake_overrides))):
        app = workflow_app(env, issuer, intake_internal_url="http://intake")
        async for workflow in _client(app):
            reach_intake_in_process(app, intake)
            yield intake, workflow


@pytest.fixture
async def local(env: Env, issuer: Path, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    async for pair in _pair(env, issuer, documents_dir=tmp_path / "documents"):
        yield pair


async def _opened(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens, request: dict[str, Any]
) -> dict[str, Any]:
    submitted = await intake.post("/v1/cases", **request)
    assert submitted.status_code == 201, submitted.text
    case_id = submitted.json()["case_id"]
    seen = await eventually(
        lambda: workflow.get(f"/v1/cases/{case_id}?lang=en", headers=tokens(*URBANISME)),
        until=lambda r: r.status_code == 200,
    )
    assert seen.status_code == 200, seen.text
    return {**submitted.json(), **seen.json()}


def _plans(case: dict[str, Any]) -> list[dict[str, Any]]:
    (plans,) = case["files"]
    assert (plans["name"], plans["label"]) == ("plans", "Plans of the project (PCMI)")
    files: list[dict[str, Any]] = plans["files"]
    return files


async def test_an_agent_downloads_the_plans_kept_in_s3_and_each_download_is_logged(
    env: Env, issuer: Path, seaweed: Any, tokens: Tokens
) -> None:
    plan, photo = pdf(), photo_with_gps()
    files = [("plan.pdf", plan, "application/pdf"), ("façade.jpg", photo, "image/jpeg")]
    async for intake, workflow in _pair(env, issuer, **s3_settings(seaweed)):
        case = await _opened(intake, workflow, tokens, multipart(make_case(), plans=files))
        links = _plans(case)
        assert [(f["filename"], f["content_type"]) for f in links] == [
            ("plan.pdf", "application/pdf"),
            ("façade.jpg", "image/jpeg"),
        ]
        assert "plans" not in [a["name"] for a in case["form"]]  # the form shows what was typed
        agent = tokens(*URBANISME, agent="zoe")
        pdf_answer, jpeg_answer = [await workflow.get(f["url"], headers=agent) for f in links]

    assert pdf_answer.status_code == 200 and pdf_answer.content == plan
    assert pdf_answer.headers["content-type"] == "application/pdf"
    assert pdf_answer.headers["content-disposition"] == (
        "attachment; filename=\"plan.pdf\"; filename*=UTF-8''plan.pdf"
    )
    assert pdf_answer.headers["x-content-type-options"] == "nosniff"
    assert jpeg_answer.headers["content-disposition"].endswith("filename*=UTF-8''fa%C3%A7ade.jpg")
    assert jpeg_answer.content == await s3_store(seaweed).get(links[1]["document_id"])
    assert assert_no_metadata(jpeg_answer.content).size == (30, 40)
    reads = await query(
        env.database_url,
        "SELECT agent, what FROM workflow.personal_data_reads WHERE case_id = $1 ORDER BY id",
        uuid.UUID(case["case_id"]),
    )
    assert [tuple(r) for r in reads[-2:]] == [("zoe", [f"document {f['document_id']}"]) for f in links]
    assert ["applicant", "form", "documents"] in [r["what"] for r in reads]


async def test_only_agents_of_the_cases_service_get_its_files(
    local: tuple[httpx.AsyncClient, ...], tokens: Tokens, env: Env
) -> None:
    intake, workflow = local
    case = await _opened(
        intake, workflow, tokens, multipart(make_case(), plans=[("p.pdf", pdf(), "application/pdf")])
    )
    (link,) = _plans(case)
    other = await workflow.get(link["url"], headers=tokens("agent", "voirie"))
    assert other.status_code == 403 and other.json()["type"] == "workflow.forbidden_service"
    assert (await workflow.get(link["url"])).status_code == 401
    reads = await query(env.database_url, "SELECT what FROM workflow.personal_data_reads")
    assert all(not what[0].startswith("document") for (what,) in reads)  # nothing of it was read

    agent = tokens(*URBANISME)
    unknown = await workflow.get(
        f"/v1/cases/{case['case_id']}/documents/doc_{uuid.uuid4().hex}", headers=agent
    )
    assert unknown.status_code == 404 and unknown.json()["type"] == "workflow.document_not_found"
    another = await _opened(intake, workflow, tokens, {"json": make_case()})
    elsewhere = await workflow.get(
        f"/v1/cases/{another['case_id']}/documents/{link['document_id']}", headers=agent
    )
    assert elsewhere.status_code == 404  # a file is downloaded through its own case only
    malformed = await workflow.get(f"/v1/cases/{case['case_id']}/documents/../../etc", headers=agent)
    assert malformed.status_code in (404, 422)


async def test_files_sent_with_a_reply_show_beside_it(
    local: tuple[httpx.AsyncClient, ...], tokens: Tokens
) -> None:
    intake, workflow = local
    case = await _opened(intake, workflow, tokens, {"json": make_case()})
    reply = {"tracking_code": case["tracking_code"], "message": "Voici le plan.", "documents": []}
    parts: list[Part] = [
        ("reply", (None, json.dumps(reply), "application/json")),
        ("documents", ("plan.pdf", pdf(), "application/pdf")),
    ]
    assert (await intake.post("/v1/replies", files=parts)).status_code == 202
    agent = tokens(*URBANISME)
    view = (await workflow.get(f"/v1/cases/{case['case_id']}", headers=agent)).json()
    (answered,) = view["replies"]
    (link,) = answered["files"]
    assert link["filename"] == "plan.pdf" and view["files"] == [
        {"name": "plans", "label": "Plans du projet (PCMI)", "files": []}
    ]
    downloaded = await workflow.get(link["url"], headers=agent)
    assert downloaded.status_code == 200 and downloaded.content == pdf()


async def test_when_intake_does_not_answer_a_download_is_a_503(
    env: Env, issuer: Path, tokens: Tokens, local: tuple[httpx.AsyncClient, ...]
) -> None:
    intake, workflow = local
    case = await _opened(
        intake, workflow, tokens, multipart(make_case(), plans=[("p.pdf", pdf(), "application/pdf")])
    )
    (link,) = _plans(case)
    app = workflow_app(env, issuer, intake_internal_url="http://127.0.0.1:9")  # nothing listens there
    async for cut_off in _client(app):
        answer = await cut_off.get(link["url"], headers=tokens(*URBANISME))
    assert answer.status_code == 503 and answer.json()["type"] == "workflow.documents_unavailable"
    assert answer.headers["retry-after"]
