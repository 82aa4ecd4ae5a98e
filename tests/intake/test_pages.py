"""A citizen does a procedure from intake's pages, over HTTP: the catalogue, a form drawn from each
procedure's definition, what comes back when something is wrong, and the receipt with the tracking code."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from devtools.demo import APPLICANT, VALID_DATA
from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from shared.i18n import languages
from shared.procedures import FieldType, load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR
from tests.conftest import Env, _client, intake_settings

CATALOGUE = load_catalogue(DEFAULT_PROCEDURES_DIR)
PROCEDURES = CATALOGUE.codes()
REQUIRED = {"fr": "(obligatoire)", "en": "(required)"}


class Html(HTMLParser):
    """A page's elements (tag and attributes), and the text of each label and legend."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.labels: dict[str, str] = {}  # the id a label is for: its text
        self.legends: list[str] = []
        self._label: str | None = None
        self._legend = False
        self._text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag == "label":
            self._label, self._text = attributes.get("for", ""), []
        if tag == "legend":
            self._legend, self._text = True, []

    def handle_endtag(self, tag: str) -> None:
        text = " ".join("".join(self._text).split())
        if tag == "label" and self._label is not None:
            self.labels[self._label], self._label = text, None
        if tag == "legend" and self._legend:
            self.legends.append(text)
            self._legend = False

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def by_id(self, element_id: str) -> dict[str, str]:
        found = [attrs for _, attrs in self.elements if attrs.get("id") == element_id]
        assert len(found) == 1, f"#{element_id}: {len(found)} elements"
        return found[0]

    def inputs(self, name: str) -> list[dict[str, str]]:
        return [a for tag, a in self.elements if tag in ("input", "textarea") and a.get("name") == name]

    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.elements if "id" in a]


def form_for(procedure: str, *, key: str | None = None, **changes: str) -> dict[str, str]:
    """What a citizen types into the procedure's form for the demo case; `changes` by input name."""
    typed: dict[str, str] = {}
    for name, value in VALID_DATA[procedure].items():
        if isinstance(value, dict):
            typed.update({f"data.{name}.{part}": str(v) for part, v in value.items()})
        else:
            typed[f"data.{name}"] = str(value)
    typed.update({f"applicant.{k}": v for k, v in APPLICANT.items()})
    typed["idempotency_key"] = key or str(uuid.uuid4())
    typed.update(changes)
    return typed


async def cases(env: Env) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(env.database_url)
    try:
        return await conn.fetch("SELECT case_id, procedure, channel, data FROM intake.cases")
    finally:
        await conn.close()


async def send(
    intake: httpx.AsyncClient, procedure: str, typed: dict[str, str], lang: str = "fr"
) -> httpx.Response:
    return await intake.post(f"/demarches/{procedure}", params={"lang": lang}, data=typed)


def summary_links(page: str) -> dict[str, str]:
    """The error summary's links: the id each goes to, and its text."""
    summary = re.search(r'<div class="error-summary" role="alert".*?</div>', page, re.S)
    assert summary, "no error summary"
    return {href: unescape(text) for href, text in re.findall(r'<a href="#([^"]+)">([^<]+)</a>', summary[0])}


# --- The catalogue ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_the_catalogue_lists_every_procedure_with_its_deadline_and_what_to_prepare(
    intake: httpx.AsyncClient, lang: str
) -> None:
    home = await intake.get("/", params={"lang": lang})
    assert home.status_code == 303 and home.headers["location"] == f"/demarches?lang={lang}"

    page = await intake.get("/demarches", params={"lang": lang})

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = unescape(page.text)
    for procedure in CATALOGUE.all_latest():
        # One click from the catalogue (and two from the home page, which sends here).
        assert f'<a href="/demarches/{procedure.code}?lang={lang}">{procedure.title.in_(lang)}</a>' in text
        assert procedure.summary.in_(lang) in text
    parking = {"fr": "Lien vers un justificatif de domicile", "en": "Link to a proof of address"}[lang]
    assert f"<li>{parking}</li>" in text
    assert {"fr": "2 mois.", "en": "2 months."}[lang] in text  # the building permit
    assert {"fr": "le silence vaut accord", "en": "silence means consent"}[lang] in text
    assert {"fr": "15 jours.", "en": "15 days."}[lang] in text  # the parking permit
    assert {"fr": "Aucun délai n'est fixé", "en": "No period is set"}[lang] in text  # the birth certificate
    assert 'action="/demarches"' in text and 'method="get"' in text
    assert "<script" not in text


async def test_the_search_filters_on_the_server_whatever_the_accents_and_case(
    intake: httpx.AsyncClient,
) -> None:
    found = (await intake.get("/demarches", params={"q": "STATIONNEMENT", "lang": "fr"})).text
    assert 'href="/demarches/carte-stationnement-resident?lang=fr"' in found
    assert 'href="/demarches/permis-construire?lang=fr"' not in found
    assert "1 démarche correspond à « STATIONNEMENT »." in unescape(found)

    accents = (await intake.get("/demarches", params={"q": "declaration prealable travaux"})).text
    assert re.findall(r'<a href="/demarches/([a-z-]+)\?lang=fr">', accents) == ["declaration-prealable"]

    english = (await intake.get("/demarches", params={"q": "birth", "lang": "en"})).text
    assert re.findall(r'<a href="/demarches/([a-z-]+)\?lang=en">', english) == ["acte-naissance"]
    assert 'value="birth"' in english  # what was searched stays in the box

    nothing = await intake.get("/demarches", params={"q": "<licorne>", "lang": "fr"})
    assert nothing.status_code == 200
    assert "Aucune démarche ne correspond à « &lt;licorne&gt; »" in nothing.text
    assert 'href="/demarches?lang=fr">Voir toutes les démarches' in nothing.text


# --- The forms ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("code", PROCEDURES)
async def test_every_procedures_form_asks_every_field_with_its_label_help_and_required_mark(
    intake: httpx.AsyncClient, code: str, lang: str
) -> None:
    procedure = CATALOGUE.latest(code)
    assert procedure is not None
    page = await intake.get(f"/demarches/{code}", params={"lang": lang})

    assert page.status_code == 200, page.text
    html = Html(page.text)
    assert len(set(html.ids())) == len(html.ids()), "an id appears twice"
    form = next(a for tag, a in html.elements if tag == "form" and a.get("method") == "post")
    assert form["action"] == f"/demarches/{code}?lang={lang}" and "novalidate" in form
    [key] = html.inputs("idempotency_key")
    assert key["type"] == "hidden" and uuid.UUID(key["value"]).version == 4
    text = unescape(page.text)
    for f in procedure.fields:
        element_id = f"data-{f.name.replace('_', '-')}"
        label = f.label.in_(lang) + (f" {REQUIRED[lang]}" if f.required else "")
        if f.type in (FieldType.CHOICE, FieldType.LOCATION, FieldType.BOOLEAN):
            assert label in html.legends, (f.name, html.legends)
        else:
            assert html.labels[element_id] == label
            assert html.by_id(element_id)["name"] == f"data.{f.name}"
            assert ("required" in html.by_id(element_id)) == f.required
        if f.help:
            assert f.help.in_(lang) in text
        if f.pattern_hint:
            assert f.pattern_hint.in_(lang) in text
        found_by_the_city = f.type is FieldType.LOCATION and procedure.districts is not None
        if found_by_the_city:  # the district is found from the point: the form does not ask for it
            assert f'name="data.{f.name}.district"' not in text
        else:
            for choice in f.choices:
                assert choice.label.in_(lang) in text
        if f.type is FieldType.LOCATION:
            for part in ("address", "latitude", "longitude"):
                assert html.inputs(f"data.{f.name}.{part}"), part
        if f.type is FieldType.CHOICE:
            assert [i["value"] for i in html.inputs(f"data.{f.name}")] == [c.value for c in f.choices]
    for name in ("applicant.name", "applicant.email", "applicant.phone"):
        assert html.inputs(name)
    assert {i["value"] for i in html.inputs("applicant.notify_by")} == {"email", "sms", "both", "none"}
    assert [i["value"] for i in html.inputs("applicant.language")] == list(languages())
    assert not html.inputs("channel"), "the public's form never asks for a channel"
    assert page.headers["cache-control"] == "private, no-cache"


async def test_an_unknown_procedure_is_a_page_saying_so(intake: httpx.AsyncClient) -> None:
    for answer in (
        await intake.get("/demarches/permis-de-voler", params={"lang": "en"}),
        await intake.post("/demarches/permis-de-voler", params={"lang": "en"}, data={"x": "y"}),
    ):
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
        assert "<h1>Procedure not found</h1>" in answer.text


# --- When something is wrong --------------------------------------------------------------------------


async def test_a_bad_submit_comes_back_with_the_summary_the_messages_and_what_was_typed(
    intake: httpx.AsyncClient, env: Env
) -> None:
    typed = form_for(
        "permis-construire",
        **{
            "data.cadastral_reference": "parcelle 12",
            "data.floor_area_m2": "beaucoup",
            "data.project_description": "",
            "applicant.name": "   ",
        },
    )

    page = await send(intake, "permis-construire", typed)

    assert page.status_code == 422
    assert page.headers["cache-control"] == "no-store"
    assert re.search(r"<title>Erreur – Permis de construire", page.text)
    links = summary_links(page.text)
    assert list(links) == [
        "data-cadastral-reference",
        "data-floor-area-m2",
        "data-project-description",
        "applicant-name",
    ]
    assert links["data-cadastral-reference"].startswith("Référence cadastrale : Le format n'est pas valide")
    assert "section et numéro de parcelle, par exemple AB 123" in links["data-cadastral-reference"]
    assert links["applicant-name"] == "Nom et prénom : Ce champ est obligatoire."
    html = Html(page.text)
    for element_id in links:
        field = html.by_id(element_id)
        assert field["aria-invalid"] == "true"
        assert f"{element_id}-error" in field["aria-describedby"].split()
        html.by_id(f"{element_id}-error")
    # What was typed is all there, the mistakes included, and the same key: nothing is lost.
    assert html.by_id("data-parcel-address")["value"] == "12 rue des Lilas, 69003 Lyon"
    assert html.by_id("data-floor-area-m2")["value"] == "beaucoup"
    assert html.by_id("applicant-email")["value"] == "camille.martin@example.org"
    assert html.by_id("data-district-4").get("checked") == ""  # est
    assert html.inputs("idempotency_key")[0]["value"] == typed["idempotency_key"]
    assert 'tabindex="-1" autofocus' in page.text
    assert await cases(env) == []


async def test_a_mistyped_email_is_named_in_the_summary_in_english(intake: httpx.AsyncClient) -> None:
    typed = form_for(
        "acte-naissance", **{"applicant.email": "camille.martin@example", "applicant.notify_by": "email"}
    )
    page = await send(intake, "acte-naissance", typed, lang="en")
    assert page.status_code == 422
    links = summary_links(page.text)
    assert list(links) == ["applicant-email"]
    assert links["applicant-email"].startswith("E-mail address: Invalid e-mail address")
    assert Html(page.text).by_id("applicant-email")["value"] == "camille.martin@example"


async def test_neither_email_nor_phone_is_said_at_the_email_field(intake: httpx.AsyncClient) -> None:
    typed = form_for("acte-naissance", **{"applicant.email": "", "applicant.phone": ""})
    links = summary_links((await send(intake, "acte-naissance", typed, lang="en")).text)
    assert links == {
        "applicant-email": "E-mail address: Give at least an e-mail address or a phone number so that we can keep you informed."
    }


async def test_whatever_is_posted_the_answer_is_a_page_never_a_500(intake: httpx.AsyncClient) -> None:
    odd = ["\x00", "x" * 5000, "1e999", "nan", "-0", "<script>", "\u202e"]
    for i, value in enumerate(odd):
        typed = dict.fromkeys(form_for("signalement-voirie"), value)
        page = await send(intake, "signalement-voirie", typed)
        assert page.status_code == 422, (i, page.text[:300])
        assert page.headers["content-type"].startswith("text/html")
        assert "<script>" not in page.text
    surrogate = await intake.post(
        "/demarches/acte-naissance",
        content=b"applicant.name=%ED%A0%80&data.surname=%ED%A0%80&applicant.email=%FF",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert surrogate.status_code == 422
    empty = await intake.post(
        "/demarches/acte-naissance",
        content=b"\xff\xfe",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert empty.status_code == 422 and "Il y a un problème" in empty.text
    for url in ("/demarches?q=" + "x" * 500, f"/demarches/recu/x?cle={'k' * 500}"):
        assert (await intake.get(url)).headers["content-type"].startswith("text/html")


# --- The receipt --------------------------------------------------------------------------------------


async def test_a_good_submit_gives_the_receipt_and_one_case_even_when_sent_twice(
    intake: httpx.AsyncClient, env: Env
) -> None:
    typed = form_for("permis-construire")

    first = await send(intake, "permis-construire", typed)
    again = await send(intake, "permis-construire", typed)  # a double click, or back and send again

    assert (first.status_code, again.status_code) == (303, 303)
    assert first.headers["location"] == again.headers["location"]
    assert first.headers["cache-control"] == "no-store"
    [case] = await cases(env)
    location = urlsplit(first.headers["location"])
    assert location.path == f"/demarches/recu/{case['case_id']}"
    assert parse_qs(location.query) == {"cle": [typed["idempotency_key"]], "lang": ["fr"]}

    receipt = await intake.get(first.headers["location"])

    assert receipt.status_code == 200
    assert receipt.headers["cache-control"] == "no-store"
    assert receipt.headers["referrer-policy"] == "no-referrer"
    assert '<meta name="referrer" content="no-referrer">' in receipt.text
    code = re.findall(r'<span class="group">([0-9A-Z]+)</span>', receipt.text)
    assert len(code) == 5 and all(len(g) == 4 for g in code[:4])
    tracking_code = "-".join(code)
    assert f'href="http://127.0.0.1:8003/suivi/{tracking_code}?lang=fr"' in receipt.text
    assert "<h1>Demande envoyée</h1>" in receipt.text
    assert "Dossier reçu" in receipt.text and "La mairie vérifie qu&#39;elle est complète." in receipt.text
    assert "le silence vaut accord" in receipt.text
    assert re.search(r'<dd><time datetime="\d{4}-\d\d-\d\d">', receipt.text)
    assert tracking_code not in first.headers["location"]
    stored = (await cases(env))[0]
    assert stored["channel"] == "web"


async def test_the_receipt_needs_the_forms_key(intake: httpx.AsyncClient, env: Env) -> None:
    typed = form_for("signalement-voirie")
    location = (await send(intake, "signalement-voirie", typed, lang="en")).headers["location"]
    case_id = urlsplit(location).path.rsplit("/", 1)[1]
    for url in (
        f"/demarches/recu/{case_id}?lang=en",
        f"/demarches/recu/{case_id}?lang=en&cle={uuid.uuid4()}",
        f"/demarches/recu/{uuid.uuid4()}?lang=en&cle={typed['idempotency_key']}",
    ):
        page = await intake.get(url)
        assert page.status_code == 404 and "<h1>Receipt not found</h1>" in page.text
        assert not re.findall(r'<span class="group">', page.text)


async def test_back_change_and_send_again_keeps_the_first_request_and_offers_a_new_one(
    intake: httpx.AsyncClient, env: Env
) -> None:
    typed = form_for("declaration-prealable")
    first = (await send(intake, "declaration-prealable", typed, lang="en")).headers["location"]

    changed = await send(intake, "declaration-prealable", {**typed, "data.works_type": "piscine"}, lang="en")

    assert changed.status_code == 409
    assert "This form was already sent" in changed.text
    assert f'href="{first.replace("&", "&amp;")}"' in changed.text
    html = Html(changed.text)
    fresh = html.inputs("idempotency_key")[0]["value"]
    assert fresh != typed["idempotency_key"]
    assert html.by_id("data-works-type-6").get("checked") == ""  # piscine, as typed
    assert len(await cases(env)) == 1
    new = await send(
        intake, "declaration-prealable", {**typed, "data.works_type": "piscine", "idempotency_key": fresh}
    )
    assert new.status_code == 303 and len(await cases(env)) == 2


async def test_a_place_by_its_coordinates_typed_the_french_way(intake: httpx.AsyncClient, env: Env) -> None:
    typed = form_for(
        "signalement-voirie",
        **{
            "data.location.address": "",
            "data.location.latitude": "45,7578",
            "data.location.longitude": " 4,832 ",
        },
    )
    assert (await send(intake, "signalement-voirie", typed)).status_code == 303
    [case] = await cases(env)
    place = json.loads(case["data"])["location"]
    assert place == {"latitude": 45.7578, "longitude": 4.832, "district": "centre", "cell": place["cell"]}
    assert len(place["cell"]) == 15  # an H3 index, the public grid cell


async def test_a_place_by_its_address_and_a_point_as_well_keeps_both(
    intake: httpx.AsyncClient, env: Env
) -> None:
    """The phone's point says where; the address, typed beside it, helps the team find the spot."""
    typed = form_for(
        "signalement-voirie",
        **{"data.location.latitude": "45.7612", "data.location.longitude": "4.8165"},
    )
    assert (await send(intake, "signalement-voirie", typed)).status_code == 303
    [case] = await cases(env)
    place = json.loads(case["data"])["location"]
    assert place["address"] == "3 place du Marché" and place["district"] == "ouest"


async def test_the_form_reads_multipart_too(intake: httpx.AsyncClient, env: Env) -> None:
    """The documents' file inputs will make the form multipart: the same handler reads it."""
    typed = form_for("carte-stationnement-resident")
    answer = await intake.post(
        "/demarches/carte-stationnement-resident",
        data=typed,
        files={"unused": ("note.txt", b"nothing", "text/plain")},
    )
    assert answer.status_code == 303, answer.text
    assert len(await cases(env)) == 1


async def test_the_notify_by_choice_reaches_the_applicant(intake: httpx.AsyncClient, env: Env) -> None:
    typed = form_for("acte-naissance", **{"applicant.notify_by": "sms", "applicant.language": "en"})
    assert (await send(intake, "acte-naissance", typed)).status_code == 303
    conn = await asyncpg.connect(env.database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM intake.applicants")
    finally:
        await conn.close()
    assert row["notify_by"] == ["sms"] and row["language"] == "en"


async def test_with_the_database_down_the_form_comes_back_saying_so_with_everything_typed(
    own_env: Env,
) -> None:
    typed = form_for("permis-construire", **{"data.project_description": "Une maison en bois."})
    async for intake in _client(create_app(intake_settings(own_env))):
        own_env.pg.stop(mode="immediate")
        page = await send(intake, "permis-construire", typed, lang="en")

        assert page.status_code == 503
        assert int(page.headers["retry-after"]) >= 1
        assert page.headers["cache-control"] == "no-store"
        assert "Your request was not sent" in page.text and "Nothing is lost" in page.text
        html = Html(page.text)
        assert html.by_id("data-project-description") is not None
        assert "Une maison en bois.</textarea>" in page.text
        assert html.by_id("data-parcel-address")["value"] == "12 rue des Lilas, 69003 Lyon"
        assert html.inputs("idempotency_key")[0]["value"] == typed["idempotency_key"]

        receipt = await intake.get(
            f"/demarches/recu/{uuid.uuid4()}", params={"cle": typed["idempotency_key"], "lang": "en"}
        )
        assert receipt.status_code == 503 and "receipt" in unescape(receipt.text)


# --- Counters, headers, languages ---------------------------------------------------------------------


@pytest.fixture
async def counter_intake(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_app(intake_settings(env, INTAKE_COUNTER_FORM="true"))):
        yield client


async def test_only_a_counter_deployment_records_another_channel(
    intake: httpx.AsyncClient, counter_intake: httpx.AsyncClient, env: Env
) -> None:
    public = await send(intake, "signalement-voirie", form_for("signalement-voirie", channel="counter"))
    assert public.status_code == 303
    page = await counter_intake.get("/demarches/signalement-voirie")
    assert [i["value"] for i in Html(page.text).inputs("channel")] == ["web", "counter", "phone"]
    # The same report again, at the same place: the agent says it is another problem (`confirm_new`).
    again = form_for("signalement-voirie", channel="counter", confirm_new="1")
    counter = await send(counter_intake, "signalement-voirie", again)
    assert counter.status_code == 303
    assert sorted(c["channel"] for c in await cases(env)) == ["counter", "web"]


async def test_every_page_has_the_headers_of_a_page_and_no_inline_script_or_style(
    intake: httpx.AsyncClient,
) -> None:
    typed = form_for("acte-naissance")
    receipt = (await send(intake, "acte-naissance", typed)).headers["location"]
    pages = [
        await intake.get("/demarches"),
        await intake.get("/demarches/acte-naissance"),
        await send(
            intake, "acte-naissance", {**typed, "data.surname": "", "idempotency_key": str(uuid.uuid4())}
        ),
        await intake.get(receipt),
    ]
    for page in pages:
        csp = page.headers["content-security-policy"]
        assert "form-action 'self'" in csp and "script-src" not in csp and "'unsafe-inline'" not in csp
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "<script" not in page.text and " style=" not in page.text and "<style" not in page.text
        assert '<link rel="stylesheet" href="/static-suivi/suivi.css">' in page.text
    css = await intake.get("/static-suivi/suivi.css")
    assert css.status_code == 200 and "margin-left" not in css.text and "padding-left" not in css.text


@pytest.mark.parametrize("lang", list(languages()))
async def test_every_word_exists_in_every_language(intake: httpx.AsyncClient, lang: str) -> None:
    """A missing word shows as its key: none on any page, in any language."""
    typed = form_for("signalement-voirie", **{"applicant.email": "x@", "data.description": ""})
    pages = [
        await intake.get("/demarches", params={"lang": lang, "q": "zzz"}),
        await intake.get("/demarches", params={"lang": lang}),
        *[await intake.get(f"/demarches/{code}", params={"lang": lang}) for code in PROCEDURES],
        await send(intake, "signalement-voirie", typed, lang=lang),
    ]
    location = (await send(intake, "signalement-voirie", form_for("signalement-voirie"), lang=lang)).headers[
        "location"
    ]
    pages.append(await intake.get(location))
    for page in pages:
        assert not re.findall(r"\b(?:intake|page|field|error)\.[a-z_.-]+[a-z]\b", page.text), page.url
        assert f'<html lang="{lang}"' in page.text
    if lang == "ar":
        assert '<html lang="ar" dir="rtl">' in pages[0].text


def test_the_pages_stay_out_of_the_openapi_document() -> None:
    settings = IntakeSettings(
        database_url="postgresql://unused", nats_url="nats://unused", environment="test"
    )
    paths = create_app(settings).openapi()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith(("/demarches", "/static"))]


def test_each_field_type_has_its_macro() -> None:
    """Adding a field type is adding one macro to `fields.html`."""
    macros = set(
        re.findall(
            r"{% macro (\w+)\(",
            (Path(__file__).parents[2] / "services/intake/templates/fields.html").read_text(),
        )
    )
    assert {t.value for t in FieldType} <= macros
