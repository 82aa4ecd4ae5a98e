"""The public tracking page over HTTP: the form, a case's progress, and why a code was not found."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest
from markupsafe import escape

from services.tracking.app import create_app as create_tracking
from services.tracking.web import Texts
from shared import tracking_code
from shared.i18n import catalogues
from tests.builders import make_case
from tests.conftest import Env, _client, tracking_settings


async def submit(intake: httpx.AsyncClient) -> str:
    answer = await intake.post("/v1/cases", json=make_case("permis-construire"))
    assert answer.status_code == 201, answer.text
    code: str = answer.json()["tracking_code"]
    return code


@pytest.fixture
async def strict_tracking(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    """tracking forgiving a single missed lookup a minute."""
    async for client in _client(create_tracking(tracking_settings(env, TRACKING_MISS_LIMIT="1/minute"))):
        yield client


def mistype(code: str) -> str:
    """The code with one symbol changed: the check symbol tells it apart from an unknown code."""
    first = "1" if code[0] != "1" else "2"
    return first + code[1:]


@pytest.mark.parametrize(("lang", "label"), [("fr", "Code de suivi"), ("en", "Tracking code")])
async def test_the_form_asks_for_the_code_in_the_readers_language(
    tracking: httpx.AsyncClient, lang: str, label: str
) -> None:
    page = await tracking.get("/", params={"lang": lang})

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'<html lang="{lang}">' in page.text
    assert re.search(rf'<label for="code">{label}</label>', page.text)
    assert 'action="/suivi"' in page.text
    assert 'method="get"' in page.text
    assert "K7QM-2XPD-9RTA-HF3W-Z" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_accept_language_picks_the_language_when_none_is_asked(tracking: httpx.AsyncClient) -> None:
    page = await tracking.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"})
    assert '<html lang="en">' in page.text
    assert 'hreflang="fr"' in page.text


@pytest.mark.parametrize(
    ("lang", "status", "title"),
    [
        ("fr", "Dossier reçu", "Permis de construire une maison individuelle"),
        ("en", "Application received", "Building permit for a house"),
    ],
)
async def test_a_submitted_case_shows_its_progress_and_nothing_personal(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, lang: str, status: str, title: str
) -> None:
    code = await submit(intake)

    page = await tracking.get(f"/suivi/{code}", params={"lang": lang})

    assert page.status_code == 200, page.text
    assert f'<html lang="{lang}">' in page.text
    assert f"<h1>{title}</h1>" in page.text
    assert status in page.text
    assert 'aria-current="step"' in page.text
    assert f"<title>{status} – {title}" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<meta name="referrer" content="no-referrer">' in page.text
    submitted = make_case()
    applicant, address = submitted["applicant"], submitted["data"]["parcel_address"]
    for personal in (applicant["name"], applicant["email"], applicant["phone"], address):
        assert personal not in page.text


async def test_the_code_typed_in_the_form_is_forgiving(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient
) -> None:
    code = await submit(intake)

    page = await tracking.get("/suivi", params={"code": code.lower().replace("-", ""), "lang": "en"})

    assert page.status_code == 200, page.text
    assert "Application received" in page.text
    assert code in page.text
    assert f'href="/suivi/{code}?lang=fr"' in page.text


async def test_a_mistyped_code_is_told_on_the_form(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient
) -> None:
    code = await submit(intake)

    page = await tracking.get("/suivi", params={"code": mistype(code), "lang": "fr"})

    assert page.status_code == 422
    assert "<title>Erreur – " in page.text
    assert 'role="alert"' in page.text
    assert 'aria-invalid="true"' in page.text
    assert "semble mal saisi" in page.text
    assert f'value="{mistype(code)}"' in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_a_malformed_code_is_escaped_when_shown_back(tracking: httpx.AsyncClient) -> None:
    page = await tracking.get("/suivi", params={"code": "<script>x</script>", "lang": "en"})

    assert page.status_code == 422
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text


async def test_an_empty_code_asks_for_one(tracking: httpx.AsyncClient) -> None:
    page = await tracking.get("/suivi", params={"code": "  ", "lang": "en"})

    assert page.status_code == 422
    assert "Enter your tracking code" in page.text


async def test_an_unknown_code_is_not_found(tracking: httpx.AsyncClient) -> None:
    page = await tracking.get(f"/suivi/{tracking_code.generate()}", params={"lang": "en"})

    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "No case matches this tracking code" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_too_many_misses_are_slowed_down_on_the_page_too(strict_tracking: httpx.AsyncClient) -> None:
    first = await strict_tracking.get("/suivi", params={"code": "nope", "lang": "en"})
    assert first.status_code == 422

    second = await strict_tracking.get("/suivi", params={"code": "nope", "lang": "en"})

    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1
    assert "Too many lookups" in second.text
    assert 'aria-invalid="true"' in second.text


async def test_the_code_is_never_logged(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    code = await submit(intake)
    caplog.set_level(logging.DEBUG)

    await tracking.get(f"/suivi/{code}")
    await tracking.get("/suivi", params={"code": code.lower()})
    await tracking.get("/suivi", params={"code": mistype(code)})

    service_records = [r for r in caplog.records if not r.name.startswith("httpx")]  # the test's own client
    assert service_records
    for record in service_records:
        line = record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())
        for form in (code, code.lower(), code[1:]):
            assert form not in line, record.name


@pytest.mark.parametrize(
    ("lang", "value", "shown"),
    [
        ("fr", date(2026, 11, 21), "21 novembre 2026"),
        ("fr", date(2026, 5, 1), "1er mai 2026"),
        ("en", date(2026, 11, 21), "21 November 2026"),
        ("en", datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "1 January 2027"),  # already next year in Paris
    ],
)
def test_dates_read_as_people_write_them(lang: str, value: date, shown: str) -> None:
    assert f">{shown}</time>" in Texts(lang).time(value)


# Plural forms a language may have beyond `one` and `other` (CLDR): Arabic's dual, few and many.
EXTRA_PLURAL_FORMS = ("zero", "two", "few", "many")


def test_every_language_has_every_page_text() -> None:
    def page_keys(texts: dict[str, str]) -> set[str]:
        return {k for k in texts if k.startswith("page.") and k.rsplit(".", 1)[-1] not in EXTRA_PLURAL_FORMS}

    keys = {lang: page_keys(texts) for lang, texts in catalogues().items()}
    assert keys["fr"]
    for lang, texts in catalogues().items():
        assert keys[lang] == keys["fr"], lang
        extra = {k.rsplit(".", 1)[0] for k in texts if k.rsplit(".", 1)[-1] in EXTRA_PLURAL_FORMS}
        assert {f"{base}.other" for base in extra} <= set(texts), f"{lang}: a plural form without its other"


@pytest.mark.parametrize(
    ("lang", "heading"), [("fr", "Une erreur s'est produite"), ("en", "Something went wrong")]
)
async def test_a_fault_is_an_html_page_with_a_reference_and_logs_no_code(
    tracking: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    lang: str,
    heading: str,
) -> None:
    code = tracking_code.generate()

    async def broken(*, code: str, **_: object) -> None:
        raise RuntimeError(f"cannot show {code}")

    monkeypatch.setattr("services.tracking.web.lookup", broken)
    caplog.set_level(logging.DEBUG)

    page = await tracking.get(f"/suivi/{code}", params={"lang": lang})

    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert f"<h1>{escape(heading)}</h1>" in page.text
    reference = re.search(r"\b[0-9a-f]{12}\b", page.text)
    assert reference and any(reference[0] in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        if not record.name.startswith("httpx"):  # the test's own client
            assert code not in record.getMessage() + repr(record.args) + str(record.exc_info)
