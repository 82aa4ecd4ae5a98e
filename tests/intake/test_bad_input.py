"""Bad input gets a 4xx whose message names the field and says what to do, in the requested language;
never a 500, never a half-written case."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from tests.builders import make_case
from tests.conftest import Env


async def _count_cases(env: Env) -> int:
    conn = await asyncpg.connect(env.database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT (SELECT count(*) FROM intake.cases) + "
                "(SELECT count(*) FROM intake.events) + (SELECT count(*) FROM intake.outbox)"
            )
        )
    finally:
        await conn.close()


def _errors(answer: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in answer.json().get("errors", [])}


async def test_an_unknown_procedure_lists_the_available_ones(intake: httpx.AsyncClient) -> None:
    answer = await intake.post("/v1/cases?lang=en", json=make_case() | {"procedure": "permis-de-peche"})
    assert answer.status_code == 404
    assert "permis-de-peche" in answer.json()["detail"] and "permis-construire" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field", "fr", "en"),
    [
        ({"floor_area_m2": None}, "data.floor_area_m2", "obligatoire", "required"),
        ({"floor_area_m2": "cent"}, "data.floor_area_m2", "nombre", "number"),
        ({"floor_area_m2": 0}, "data.floor_area_m2", "au moins 1", "at least 1"),
        ({"district": "banlieue"}, "data.district", "centre, nord", "centre, nord"),
        ({"cadastral_reference": "123-456"}, "data.cadastral_reference", "AB 123", "AB 123"),
        ({"project_description": "x" * 4001}, "data.project_description", "4000", "4000"),
        ({"plans_url": "ftp://plans"}, "data.plans_url", "https://", "https://"),
        ({"swimming_pool": True}, "data.swimming_pool", "parcel_address", "parcel_address"),
    ],
)
async def test_each_invalid_field_is_named_with_what_is_wrong(
    intake: httpx.AsyncClient, env: Env, change: dict[str, object], field: str, fr: str, en: str
) -> None:
    for lang, expected in (("fr", fr), ("en", en)):
        answer = await intake.post(f"/v1/cases?lang={lang}", json=make_case(**change))
        assert answer.status_code == 422, answer.text
        assert expected in _errors(answer)[field], _errors(answer)
    assert await _count_cases(env) == 0


async def test_every_problem_is_reported_at_once(intake: httpx.AsyncClient) -> None:
    body = make_case(district="x", floor_area_m2=-3, applicant={"email": "pas-une-adresse", "language": "de"})
    errors = _errors(await intake.post("/v1/cases", json=body))
    assert set(errors) == {"data.district", "data.floor_area_m2", "applicant.email", "applicant.language"}


async def test_a_citizen_must_leave_a_way_to_be_reached(intake: httpx.AsyncClient) -> None:
    body = make_case(applicant={"email": None, "phone": None})
    answer = await intake.post("/v1/cases", headers={"Accept-Language": "en"}, json=body)
    assert answer.status_code == 422
    assert "e-mail address or a phone number" in _errors(answer)["applicant"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'{"procedure": "permis-construire",', 400, "JSON"),
        (b"[]", 422, ""),
        (b'{"procedure": "permis-construire"}', 422, ""),
        (b'{"procedure": 3, "data": [], "applicant": {}, "channel": "pigeon"}', 422, ""),
    ],
)
async def test_malformed_requests_are_refused_clearly(
    intake: httpx.AsyncClient, env: Env, body: bytes, status: int, words: str
) -> None:
    answer = await intake.post(
        "/v1/cases?lang=en", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"]
    if status == 422:
        assert answer.json()["errors"], "each problem names its field"
    assert await _count_cases(env) == 0


async def test_the_missing_parts_of_a_request_are_named(intake: httpx.AsyncClient) -> None:
    answer = await intake.post(
        "/v1/cases?lang=en", json={"procedure": "permis-construire", "channel": "pigeon"}
    )
    errors = _errors(answer)
    assert errors["data"] == "This field is required."
    assert errors["applicant"] == "This field is required."
    assert "web, counter, phone, mail" in errors["channel"]


async def test_an_oversized_body_is_refused_before_it_is_read(intake: httpx.AsyncClient, env: Env) -> None:
    body = make_case(project_description="x" * 100_000)
    answer = await intake.post("/v1/cases?lang=en", json=body)
    assert answer.status_code == 413
    assert "too large" in answer.json()["detail"]
    assert await _count_cases(env) == 0


async def test_an_oversized_chunked_body_is_refused_too(intake: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b"x" * 1024

    answer = await intake.post("/v1/cases", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413


async def test_an_unknown_route_or_method_is_a_clear_4xx(intake: httpx.AsyncClient) -> None:
    assert (await intake.get("/v1/nope")).status_code == 404
    assert (await intake.delete("/v1/cases")).status_code == 405


async def test_a_wrong_method_says_which_methods_are_allowed(intake: httpx.AsyncClient) -> None:
    answer = await intake.delete("/v1/cases?lang=en")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_an_unknown_field_is_named_as_such(intake: httpx.AsyncClient, lang: str) -> None:
    body = make_case() | {"x": 1}
    body["applicant"]["nickname"] = "Jo"
    answer = await intake.post(f"/v1/cases?lang={lang}", json=body)
    assert answer.status_code == 422
    word = {"fr": "champ inconnu", "en": "unknown field"}[lang]
    assert set(_errors(answer)) == {"x", "applicant.nickname"}
    assert f"{word} `x`" in _errors(answer)["x"]
    assert f"{word} `nickname`" in _errors(answer)["applicant.nickname"]


NUL, SURROGATE = "\u0000", "\udfff"


def _raw(body: dict[str, object]) -> bytes:
    # json.dumps escapes both (`\u0000`, `\udfff`), as a client would send them.
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("where", "body", "field"),
    [
        ("name", make_case(applicant={"name": f"Ana{NUL}s"}), "applicant.name"),
        ("name", make_case(applicant={"name": f"Ana{SURROGATE}"}), "applicant.name"),
        ("email", make_case(applicant={"email": f"a{NUL}@exemple.fr"}), "applicant.email"),
        ("text", make_case(project_description=f"Une maison{NUL}"), "data.project_description"),
        ("text", make_case(project_description=f"Une maison{SURROGATE}"), "data.project_description"),
        ("link", make_case(plans_url=f"https://plans.fr/{NUL}"), "data.plans_url"),
        ("link", make_case(plans_url=f"https://plans.fr/{SURROGATE}"), "data.plans_url"),
        ("address", make_case(parcel_address=f"3 rue {SURROGATE} Haute"), "data.parcel_address"),
        (
            "location",
            make_case("signalement-voirie", location={"address": f"Place{NUL} du marché"}),
            "data.location",
        ),
    ],
)
async def test_text_that_cannot_be_stored_is_named_not_a_500(
    intake: httpx.AsyncClient, env: Env, where: str, body: dict[str, object], field: str
) -> None:
    for lang, words in (("fr", "caractère"), ("en", "character")):
        answer = await intake.post(
            f"/v1/cases?lang={lang}", content=_raw(body), headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert words in _errors(answer)[field], _errors(answer)
    assert await _count_cases(env) == 0


async def test_an_unknown_procedure_with_a_lone_surrogate_is_still_a_404(intake: httpx.AsyncClient) -> None:
    body = make_case() | {"procedure": f"permis{SURROGATE}"}
    answer = await intake.post("/v1/cases", content=_raw(body), headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert "procedure" in _errors(answer)


@pytest.mark.parametrize("depth", [33, 100, 300, 900, 5000])
async def test_a_body_nested_too_deeply_is_one_clear_400(
    intake: httpx.AsyncClient, env: Env, depth: int
) -> None:
    nested = "[" * (depth - 2) + "]" * (depth - 2)
    body = json.dumps(make_case()).replace('"data": {', f'"data": {{"deep": {nested}, ', 1)
    answer = await intake.post(
        "/v1/cases?lang=en", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "at most 32 levels" in answer.json()["detail"]
    assert await _count_cases(env) == 0


async def test_a_body_nested_within_the_limit_is_read(intake: httpx.AsyncClient) -> None:
    nested = "[" * 29 + "]" * 29  # with the body and `data`, 32 levels: the limit
    body = json.dumps(make_case()).replace('"data": {', f'"data": {{"deep": {nested}, ', 1)
    answer = await intake.post(
        "/v1/cases?lang=en", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert "data.deep" in _errors(answer), "not a field of the procedure"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"message": f"Voici{NUL}"}, "message"),
        ({"message": f"Voici{SURROGATE}"}, "message"),
        ({"documents": [f"https://docs.fr/{NUL}"]}, "documents.0"),
        ({"documents": ["https://docs.fr/a", f"https://docs.fr/{SURROGATE}"]}, "documents.1"),
    ],
)
async def test_a_reply_with_text_that_cannot_be_stored_is_named_not_a_500(
    intake: httpx.AsyncClient, change: dict[str, object], field: str
) -> None:
    body = {"tracking_code": "K7QM-2XPD-9RTA-HF3W-Z", "message": "Voici", "documents": []} | change
    for lang, words in (("fr", "caractère"), ("en", "character")):
        answer = await intake.post(
            f"/v1/replies?lang={lang}", content=_raw(body), headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert words in _errors(answer)[field], _errors(answer)
