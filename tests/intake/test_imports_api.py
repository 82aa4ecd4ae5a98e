"""A city's admin sends past cases to intake over HTTP: the same rules as the command, good lines imported
once, bad ones answered with their line number, and only an admin may do it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest

from devtools import dev_issuer
from services.intake.app import create_app as create_intake
from shared.events import STREAM
from tests.conftest import Env, Tokens, _client, intake_settings
from tests.intake.test_imports import past_case
from tests.waiting import eventually, query, scalar

JSON_LINES = {"Content-Type": "application/jsonl"}


@pytest.fixture
async def intake(env: Env, issuer: Path) -> AsyncIterator[httpx.AsyncClient]:
    """intake checking agents' tokens against the test's development issuer."""
    settings = intake_settings(
        env, oidc_issuer=dev_issuer.DEV_ISSUER, oidc_jwks_file=issuer / dev_issuer.JWKS_FILE
    )
    async for client in _client(create_intake(settings)):
        yield client


def jsonl(*lines: object) -> bytes:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode() + b"\n"


async def stream_subjects(env: Env) -> list[str]:
    """The subjects of the events in the CASES stream."""
    nc = await nats.connect(env.nats_url)
    try:
        info = await nc.jetstream().stream_info(STREAM, subjects_filter=">")
        return sorted((info.state.subjects or {}).keys())
    finally:
        await nc.close()


async def test_an_admin_imports_a_small_file_once_and_bad_lines_are_told_by_number(
    intake: httpx.AsyncClient, tokens: Tokens, env: Env
) -> None:
    body = jsonl(
        past_case("PC-2024-0001", decided_after_days=12, waited_days=3),
        "{not json",
        past_case("PC-2024-0002", decided_after_days=20),
        past_case("PC-2024-0001", decided_after_days=12, waited_days=3),  # the same case again
        past_case("PC-2024-0003", decided_after_days=5, procedure="permis-de-voler"),
    )
    answer = await intake.post("/v1/imports", content=body, headers={**JSON_LINES, **tokens("admin")})

    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["imported"], summary["skipped"], summary["rejected"]) == (2, 1, 2)
    assert [(e["line"], e["reference"]) for e in summary["errors"]] == [(2, None), (5, "PC-2024-0003")]
    assert summary["errors"][0]["error"].startswith("not JSON")
    assert "unknown procedure 'permis-de-voler'" in summary["errors"][1]["error"]

    events = await query(env.database_url, "SELECT type, subject FROM intake.events ORDER BY subject")
    assert [e["type"] for e in events] == ["fr.suivi.case.imported.v1"] * 2
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.outbox") == 2
    published = await eventually(lambda: stream_subjects(env), until=lambda s: len(s) == 2)
    assert published == [e["subject"] for e in events]
    assert all(s.startswith("case.permis-construire.") and s.endswith(".imported") for s in published)

    again = await intake.post("/v1/imports", content=body, headers={**JSON_LINES, **tokens("admin")})
    assert again.status_code == 200, again.text
    assert (again.json()["imported"], again.json()["skipped"], again.json()["rejected"]) == (0, 3, 2)
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.events") == 2
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.imported_cases") == 2


async def test_only_an_admin_imports(intake: httpx.AsyncClient, tokens: Tokens, env: Env) -> None:
    body = jsonl(past_case("PC-2024-0001", decided_after_days=12))

    agent = await intake.post(
        "/v1/imports", content=body, headers={**JSON_LINES, **tokens("agent")}, params={"lang": "en"}
    )
    assert agent.status_code == 403
    assert agent.headers["content-type"] == "application/problem+json"
    assert 'role "agent" does not allow' in agent.json()["detail"] and "admin" in agent.json()["detail"]

    anonymous = await intake.post("/v1/imports", content=body, headers=JSON_LINES)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")

    forged = {"Authorization": tokens("admin")["Authorization"][:-4] + "AAAA"}
    assert (
        await intake.post("/v1/imports", content=body, headers={**JSON_LINES, **forged})
    ).status_code == 401
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.events") == 0


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (
            jsonl(past_case("PC-1", decided_after_days=3)),
            {"Content-Type": "application/json"},
            415,
            "JSON Lines",
        ),
        (b"reference;procedure\nPC-1;permis-construire\n", JSON_LINES, 400, "not JSON Lines"),
        (b"\xff\xfe\x00\x00garbage", JSON_LINES, 400, "not JSON Lines"),
        (b"[" * 60_000, JSON_LINES, 400, "not JSON Lines"),
        (b"\n\n  \n", JSON_LINES, 422, "no past case"),
    ],
    ids=["json-not-jsonl", "csv", "binary", "deeply-nested", "empty"],
)
async def test_a_body_that_is_no_json_lines_is_a_clear_4xx(
    intake: httpx.AsyncClient, tokens: Tokens, body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    answer = await intake.post(
        "/v1/imports", content=body, headers={**headers, **tokens("admin")}, params={"lang": "en"}
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert says in answer.json()["detail"]


async def test_lines_that_cannot_be_stored_are_rejected_not_a_500(
    intake: httpx.AsyncClient, tokens: Tokens
) -> None:
    nul = past_case("PC-2024-0010", decided_after_days=3, facts={"district": "centre\u0000"})
    ancient = past_case("PC-2024-0011", decided_after_days=3)
    ancient["timeline"][0]["at"] = "0001-01-01T00:00:00+01:00"
    body = jsonl(nul, ancient, "[1, 2]") + b"\xc3\x28\n"
    answer = await intake.post("/v1/imports", content=body, headers={**JSON_LINES, **tokens("admin")})
    assert answer.status_code == 200, answer.text
    errors = {e["line"]: e["error"] for e in answer.json()["errors"]}
    assert "NUL character" in errors[1]
    assert "before 1900" in errors[2]
    assert "not a JSON object but a list" in errors[3]
    assert "not UTF-8" in errors[4]


async def test_a_file_too_big_for_a_request_is_pointed_at_the_command(
    env: Env, issuer: Path, tokens: Tokens
) -> None:
    settings = intake_settings(
        env,
        oidc_issuer=dev_issuer.DEV_ISSUER,
        oidc_jwks_file=issuer / dev_issuer.JWKS_FILE,
        import_max_body_bytes=100 * 1024,
    )
    line = json.dumps(past_case("PC-2024-0001", decided_after_days=12)).encode() + b"\n"
    async for intake in _client(create_intake(settings)):
        big = await intake.post(
            "/v1/imports",
            content=line * (200 * 1024 // len(line)),
            headers={**JSON_LINES, **tokens("admin")},
            params={"lang": "en"},
        )
        assert big.status_code == 413
        assert "python -m services.intake.imports" in big.json()["detail"]
        # Larger than the usual limit, within the import's: imported.
        within = await intake.post(
            "/v1/imports", content=line * (80 * 1024 // len(line)), headers={**JSON_LINES, **tokens("admin")}
        )
        assert within.status_code == 200, within.text
        # Every other route keeps the usual limit and its own message.
        other = await intake.post("/v1/cases", content=b"x" * (65 * 1024), params={"lang": "en"})
        assert other.status_code == 413 and "python -m" not in other.json()["detail"]


async def test_without_an_identity_provider_the_import_says_what_to_configure(
    env: Env, tokens: Tokens
) -> None:
    async for intake in _client(create_intake(intake_settings(env))):
        answer = await intake.post(
            "/v1/imports",
            content=jsonl(past_case("PC-1", decided_after_days=3)),
            headers={**JSON_LINES, **tokens("admin")},
            params={"lang": "en"},
        )
        assert answer.status_code == 503
        assert "OIDC_ISSUER" in answer.json()["detail"] and "OIDC_JWKS_URL" in answer.json()["detail"]
        assert (await intake.get("/v1/procedures")).status_code == 200  # the citizens' side works


def test_half_an_identity_provider_stops_start_up(env: Env, issuer: Path) -> None:
    with pytest.raises(ValueError, match=r"oidc_issuer|OIDC_ISSUER"):
        intake_settings(env, oidc_jwks_file=issuer / dev_issuer.JWKS_FILE)
