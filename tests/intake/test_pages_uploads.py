"""A citizen sends files with a procedure's HTML form: the form posts them as multipart, a case names
them by their ids, a file that is not what the field takes comes back with the form (the summary naming
the field, the message next to it saying to choose the file again), and an optional file may be left out."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake.app import create_app
from tests.conftest import Env, _client, intake_settings
from tests.intake.test_documents import EXE, form_data, pdf, photo_with_gps, stored_files
from tests.intake.test_pages import Html, cases, form_for, summary_links

PLANS_ID = "data-plans"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "documents"


@pytest.fixture
async def intake(env: Env, folder: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_app(intake_settings(env, documents_dir=folder))):
        yield client


async def send_with_files(
    intake: httpx.AsyncClient,
    procedure: str,
    typed: dict[str, str],
    files: list[tuple[str, tuple[str, bytes, str]]],
    lang: str = "fr",
) -> httpx.Response:
    """What the browser sends for a multipart form: what was typed, and each file chosen as a part."""
    return await intake.post(f"/demarches/{procedure}", params={"lang": lang}, data=typed, files=files)


def no_file() -> list[tuple[str, tuple[str, bytes, str]]]:
    """A file input left empty: the browser still sends its part, with no name and no content."""
    return [("data.plans", ("", b"", "application/octet-stream"))]


async def test_the_permit_form_takes_files_with_their_types_size_and_count_said(
    intake: httpx.AsyncClient,
) -> None:
    page = await intake.get("/demarches/permis-construire", params={"lang": "fr"})

    html = Html(page.text)
    form = next(a for tag, a in html.elements if tag == "form" and a.get("method") == "post")
    assert form["enctype"] == "multipart/form-data"
    plans = html.by_id(PLANS_ID)
    assert plans["type"] == "file" and plans["name"] == "data.plans" and "multiple" in plans
    assert plans["accept"] == "application/pdf,image/jpeg,image/png"
    assert f"{PLANS_ID}-hint" in plans["aria-describedby"]
    assert "PDF, JPEG, PNG ; jusqu'à 8 fichiers, 10 Mo au plus chacun." in unescape(page.text)
    single = Html((await intake.get("/demarches/carte-stationnement-resident")).text)
    assert not [a for tag, a in single.elements if a.get("type") == "file"]


async def test_a_permit_form_with_a_pdf_plan_and_a_photo_creates_a_case_naming_both(
    intake: httpx.AsyncClient, env: Env, folder: Path
) -> None:
    files = [
        ("data.plans", ("plan de masse.pdf", pdf(), "application/pdf")),
        ("data.plans", ("facade.jpg", photo_with_gps(), "image/jpeg")),
    ]

    sent = await send_with_files(intake, "permis-construire", form_for("permis-construire"), files)

    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].startswith("/demarches/recu/")
    [case] = await cases(env)
    data = await form_data(env, str(case["case_id"]))
    assert len(data["plans"]) == 2 and all(re.fullmatch(r"doc_[0-9a-f]{32}", d) for d in data["plans"])
    assert len(stored_files(folder)) == 2


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_a_file_of_the_wrong_type_comes_back_with_the_form_naming_the_field(
    intake: httpx.AsyncClient, env: Env, folder: Path, lang: str
) -> None:
    typed = form_for("permis-construire", **{"applicant.name": "Jeanne Martin"})
    files = [("data.plans", ("plan.pdf", EXE, "application/pdf"))]

    back = await send_with_files(intake, "permis-construire", typed, files, lang=lang)

    assert back.status_code == 422, back.text
    label = {"fr": "Plans du projet (PCMI)", "en": "Plans of the project (PCMI)"}[lang]
    links = summary_links(back.text)
    assert PLANS_ID in links and label in links[PLANS_ID] and "plan.pdf" in links[PLANS_ID]
    text = unescape(back.text)
    again = {"fr": "choisissez le fichier de nouveau", "en": "choose the file again"}[lang]
    assert re.search(rf'<p id="{PLANS_ID}-again" class="file-again">[^<]*{again}', text)
    plans = Html(back.text).by_id(PLANS_ID)
    assert plans["aria-invalid"] == "true"
    assert plans["aria-describedby"].split() == [f"{PLANS_ID}-hint", f"{PLANS_ID}-error", f"{PLANS_ID}-again"]
    assert 'value="Jeanne Martin"' in back.text  # what was typed is kept; the file cannot be
    assert await cases(env) == [] and stored_files(folder) == []


async def test_a_good_file_is_chosen_again_when_another_field_is_wrong(
    intake: httpx.AsyncClient, env: Env, folder: Path
) -> None:
    typed = form_for("permis-construire", **{"applicant.name": ""})
    files = [("data.plans", ("plan.pdf", pdf(), "application/pdf"))]

    back = await send_with_files(intake, "permis-construire", typed, files)

    assert back.status_code == 422
    links = summary_links(back.text)
    assert "applicant-name" in links and PLANS_ID not in links  # the plan was fine
    assert f'id="{PLANS_ID}-again"' in back.text
    assert await cases(env) == [] and stored_files(folder) == []


@pytest.mark.parametrize("empty", [no_file, list], ids=["empty-input", "no-part"])
async def test_no_file_is_fine_when_the_field_is_optional(
    intake: httpx.AsyncClient, env: Env, empty: Any
) -> None:
    typed = form_for("permis-construire")

    sent = await send_with_files(intake, "permis-construire", typed, empty())

    assert sent.status_code == 303, sent.text
    [case] = await cases(env)
    assert "plans" not in await form_data(env, str(case["case_id"]))


async def test_the_forms_upload_has_the_upload_limit_not_the_usual_one(intake: httpx.AsyncClient) -> None:
    # Larger than the usual 64 KiB, within a field's 10 MB.
    files = [("data.plans", ("plan.pdf", pdf(300_000), "application/pdf"))]

    sent = await send_with_files(intake, "permis-construire", form_for("permis-construire"), files)

    assert sent.status_code == 303, sent.text
