"""A citizen about to report a problem already reported nearby is told before anything is sent: the form
comes back with what was typed and a panel "already reported nearby?" listing the open reports of the
same kind within 50 m, each with a link to follow it, and a button to send the report anyway when it is
another problem. Photos cannot come back with a page: the panel says to choose them again."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path

import httpx
import pytest

from services.intake.app import create_app
from tests.conftest import Env, _client, intake_settings
from tests.intake.test_documents import photo_with_gps, stored_files
from tests.intake.test_pages import Html, cases, form_for, send
from tests.reports.places import DESCRIPTION, HERE, REPORT, north_of, report

PANEL = re.compile(r'<section class="banner nearby".*?</section>', re.S)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "documents"


@pytest.fixture
async def intake(env: Env, folder: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(
        create_app(intake_settings(env, documents_dir=folder, tracking_public_url="https://suivi.example"))
    ):
        yield client


def _panel(page: httpx.Response) -> str:
    found = PANEL.search(page.text)
    assert found, "no panel"
    return unescape(found[0])


async def test_the_form_comes_back_with_the_reports_nearby_and_everything_typed(
    intake: httpx.AsyncClient, env: Env
) -> None:
    near = await report(intake, north_of(HERE, 20))
    await report(intake, north_of(HERE, 15), category="graffiti")  # another kind of problem
    typed = form_for(REPORT, **{"data.description": DESCRIPTION, "applicant.phone": "06 12 34 56 78"})

    page = await send(intake, REPORT, typed)

    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"  # what was typed
    assert "<title>Déjà signalé à proximité ? – " in page.text
    panel = _panel(page)
    assert "Déjà signalé à proximité ?" in panel
    assert "1 signalement du même type, encore ouvert, se trouve à moins de 50 m de ce lieu." in panel
    assert f'href="https://suivi.example/signalements/{near["case_id"]}?lang=fr"' in panel
    assert "Éclairage public" in panel and "environ 20 m" in panel and "Signalement reçu" in panel
    assert "Tag" not in panel
    html = Html(page.text)
    [button] = [a for tag, a in html.elements if tag == "button" and a.get("name") == "confirm_new"]
    assert (button["value"], button["form"]) == ("1", "procedure-form")
    assert "C'est un autre problème : envoyer mon signalement" in panel
    # Nothing typed is lost; nothing was sent.
    assert f">{DESCRIPTION}</textarea>" in unescape(page.text)
    assert html.inputs("data.location.address")[0]["value"] == "3 place du Marché"
    assert html.inputs("applicant.name")[0]["value"] == "Camille Martin"
    assert html.inputs("applicant.phone")[0]["value"] == "06 12 34 56 78"
    assert [i["value"] for i in html.inputs("data.category") if "checked" in i] == ["eclairage"]
    assert len(await cases(env)) == 2

    sent = await send(intake, REPORT, {**typed, "confirm_new": "1"})
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].startswith("/demarches/recu/")
    assert len(await cases(env)) == 3


async def test_with_no_open_report_of_that_kind_nearby_the_form_is_sent_at_once(
    intake: httpx.AsyncClient, env: Env
) -> None:
    await report(intake, north_of(HERE, 90))
    await report(intake, north_of(HERE, 5), category="nid-de-poule")
    sent = await send(intake, REPORT, form_for(REPORT))
    assert sent.status_code == 303, sent.text
    assert len(await cases(env)) == 3


async def test_chosen_photos_are_asked_again_and_kept_by_nobody_until_sent(
    intake: httpx.AsyncClient, env: Env, folder: Path
) -> None:
    await report(intake, north_of(HERE, 10))
    typed = form_for(REPORT)
    photo = [("data.photo", ("lampadaire.jpg", photo_with_gps(), "image/jpeg"))]

    page = await intake.post(f"/demarches/{REPORT}", params={"lang": "en"}, data=typed, files=photo)

    assert page.status_code == 200, page.text
    panel = _panel(page)
    assert "not the photos you chose: choose them again, then send the form" in panel
    assert '<a href="#data-photo">Choose the photos again</a>' in panel
    assert 'name="confirm_new"' not in panel  # sending from here would send the report without them
    assert "choose the file again before sending" in unescape(page.text)  # next to the field
    html = Html(page.text)
    assert [i["value"] for i in html.inputs("confirm_new")] == ["1"]  # the form's own button sends it
    assert stored_files(folder) == [] and len(await cases(env)) == 1

    sent = await intake.post(
        f"/demarches/{REPORT}", params={"lang": "en"}, data={**typed, "confirm_new": "1"}, files=photo
    )
    assert sent.status_code == 303, sent.text
    assert len(stored_files(folder)) == 1 and len(await cases(env)) == 2


async def test_the_panel_speaks_the_citizens_language(intake: httpx.AsyncClient) -> None:
    await report(intake, north_of(HERE, 30))
    await report(intake, north_of(HERE, 40))
    panel = _panel(await send(intake, REPORT, form_for(REPORT), lang="ar"))
    assert "هل سبق الإبلاغ عنها بالقرب من هنا؟" in panel
    assert "يوجد بلاغان مفتوحان من النوع نفسه على بُعد أقل من 50 م من هذا المكان." in panel  # the dual
    assert "حوالي 30 م" in panel and "الإنارة العمومية" in panel


async def test_a_form_sent_twice_is_one_report_never_its_own_duplicate(
    intake: httpx.AsyncClient, env: Env
) -> None:
    typed = form_for(REPORT)  # one key: a double click, or back and send again
    first = await send(intake, REPORT, typed)
    again = await send(intake, REPORT, typed)
    assert first.status_code == again.status_code == 303, again.text
    assert first.headers["location"] == again.headers["location"]
    assert len(await cases(env)) == 1
