"""Who may call what: every route of every service has its row in the rights matrix below, and each row is
checked with every kind of caller, in process, on real PostgreSQL and NATS. A route added without its row
fails `test_every_route_has_its_row_in_the_matrix`.

A caller the row lets in gets neither 401 nor 403 (it may get a 404 or a 422 for a made-up id or body: the
point is that the door opened), nor a 5xx. A caller without a token gets 401; a valid agent token whose
role or services do not fit gets 403. Every route taking agent tokens refuses, with 401 and a message
saying why, a token that is expired, signed by another key, meant for another audience or issued by
another issuer (and a few more forgeries).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from devtools import dev_issuer
from services.notify.sender import stop_token
from shared import tracking_code
from tests.conftest import Tokens
from tests.security.conftest import OPEN311_KEY, SERVICES, SMS_PROVIDER_TOKEN, Stack, submit_and_open

# --- The matrix --------------------------------------------------------------------------------------

WHO = {
    "public": "anyone, no token needed",
    "citizen": "anyone holding the citizen's secret (tracking code, receipt key, stop link): no token",
    "case-service": "an agent, supervisor or admin of the service the case belongs to (admins: every one)",
    "any-agent": "any agent token (agent, supervisor, admin); what it lists is cut to the agent's services",
    "admin": "an agent token whose role is admin",
    "internal": "another Suivi service, with the internal API token",
    "sms-provider": "the SMS provider posting delivery reports, with its own token",
    "311-app": "a 311 app, with its API key in the form (Open311 answers 403 without one)",
}

# Every (method, path) every service serves, and who may call it (`WHO`). A new route needs its row.
MATRIX = """
service   methods                  path                                                  who
intake    GET,HEAD                 /openapi.json                                         public
intake    GET,HEAD                 /docs                                                 public
intake    GET,HEAD                 /docs/oauth2-redirect                                 public
intake    GET,HEAD                 /redoc                                                public
intake    GET                      /v1/procedures                                        public
intake    GET                      /v1/procedures/{code}                                 public
intake    POST                     /v1/cases                                             public
intake    POST                     /v1/replies                                           citizen
intake    POST                     /v1/ratings                                           citizen
intake    POST                     /v1/fix-checks                                        citizen
intake    POST                     /v1/imports                                           admin
intake    POST                     /v1/admin/cases/{case_id}/erasure                     admin
intake    GET                      /internal/v1/cases/{case_id}/contact                  internal
intake    GET                      /internal/v1/cases/{case_id}                          internal
intake    GET                      /internal/v1/documents/{document_id}                  internal
intake    GET                      /v1/reports/nearby                                    public
intake    GET                      /internal/v1/cases/{case_id}/nearby                   internal
intake    GET                      /                                                     public
intake    GET                      /demarches                                            public
intake    GET                      /demarches/{code}                                     public
intake    POST                     /demarches/{code}                                     public
intake    GET                      /demarches/recu/{case_id}                             citizen
intake    GET                      /open311/v2/services.json                             public
intake    GET                      /open311/v2/services.xml                              public
intake    GET                      /open311/v2/services/{service_code}.json              public
intake    GET                      /open311/v2/services/{service_code}.xml               public
intake    POST                     /open311/v2/requests.json                             311-app
intake    POST                     /open311/v2/requests.xml                              311-app
intake    DELETE,GET,PATCH,POST,PUT /open311/v2/{rest:path}                              public
intake    GET                      /healthz                                              public
intake    GET                      /readyz                                               public
intake    GET                      /static-suivi/{path:path}                             public
workflow  GET,HEAD                 /openapi.json                                         public
workflow  GET,HEAD                 /docs                                                 public
workflow  GET,HEAD                 /docs/oauth2-redirect                                 public
workflow  GET,HEAD                 /redoc                                                public
workflow  GET                      /v1/queue                                             any-agent
workflow  GET                      /v1/cases/{case_id}                                   case-service
workflow  GET                      /v1/cases/{case_id}/documents/{document_id}           case-service
workflow  POST                     /v1/cases/{case_id}/actions                           case-service
workflow  GET                      /healthz                                              public
workflow  GET                      /readyz                                               public
tracking  GET,HEAD                 /openapi.json                                         public
tracking  GET,HEAD                 /docs                                                 public
tracking  GET,HEAD                 /docs/oauth2-redirect                                 public
tracking  GET,HEAD                 /redoc                                                public
tracking  GET                      /v1/track/{code}                                      citizen
tracking  GET                      /                                                     public
tracking  GET                      /suivi                                                citizen
tracking  GET                      /suivi/{code}                                         citizen
tracking  POST                     /suivi/{code}/avis                                    citizen
tracking  POST                     /suivi/{code}/repare                                  citizen
tracking  POST                     /suivi/reponse                                        citizen
tracking  GET                      /signalements/{case_id}                               public
tracking  GET                      /open311/v2/requests.json                             public
tracking  GET                      /open311/v2/requests.xml                              public
tracking  GET                      /open311/v2/requests/{service_request_id}.json        public
tracking  GET                      /open311/v2/requests/{service_request_id}.xml         public
tracking  POST                     /open311/v2/requests.json                             311-app
tracking  POST                     /open311/v2/requests.xml                              311-app
tracking  DELETE,GET,PATCH,POST,PUT /open311/v2/{rest:path}                              public
tracking  GET                      /healthz                                              public
tracking  GET                      /readyz                                               public
tracking  GET                      /static-suivi/{path:path}                             public
stats     GET,HEAD                 /openapi.json                                         public
stats     GET,HEAD                 /docs                                                 public
stats     GET,HEAD                 /docs/oauth2-redirect                                 public
stats     GET,HEAD                 /redoc                                                public
stats     GET                      /v1/stats/procedures                                  public
stats     GET                      /v1/stats/procedures/{code}                           public
stats     GET                      /v1/stats/open-data/                                  public
stats     GET                      /v1/stats/open-data/{name}                            public
stats     GET                      /v1/stats/reports/{procedure}                         public
stats     GET                      /v1/stats/reports/{procedure}/signalements.csv        public
stats     GET                      /v1/stats/reports/{procedure}/quartiers.geojson       public
stats     GET                      /v1/stats/reports/{procedure}/datapackage.json        public
stats     GET                      /statistiques                                         public
stats     GET                      /                                                     public
stats     GET                      /statistiques/signalements                            public
stats     GET                      /healthz                                              public
stats     GET                      /readyz                                               public
stats     GET                      /static-stats/{path:path}                             public
stats     GET                      /static-suivi/{path:path}                             public
notify    GET,HEAD                 /openapi.json                                         public
notify    GET,HEAD                 /docs                                                 public
notify    GET,HEAD                 /docs/oauth2-redirect                                 public
notify    GET,HEAD                 /redoc                                                public
notify    GET                      /internal/v1/cases/{case_id}/notifications            internal
notify    GET                      /notifications/stop/{token}                           citizen
notify    POST                     /notifications/stop/{token}                           citizen
notify    POST                     /v1/sms/status                                        sms-provider
notify    POST                     /v1/subscriptions                                     admin
notify    GET                      /v1/subscriptions                                     admin
notify    GET                      /v1/subscriptions/{subscription_id}                   admin
notify    POST                     /v1/subscriptions/{subscription_id}/replay            admin
notify    POST                     /v1/subscriptions/{subscription_id}/pause             admin
notify    POST                     /v1/subscriptions/{subscription_id}/resume            admin
notify    POST                     /v1/subscriptions/{subscription_id}/rotate-secret     admin
notify    DELETE                   /v1/subscriptions/{subscription_id}                   admin
notify    GET                      /v1/asyncapi.json                                     public
notify    GET                      /healthz                                              public
notify    GET                      /readyz                                               public
"""

# What each caller gets from a row: "in" (neither 401 nor 403, nor a 5xx), or the status it must get.
# The case the rows' `{case_id}` names belongs to the urbanisme service. Callers: agents and supervisors of
# urbanisme, of other services, an admin (of another service), the internal token, the SMS provider's.
# A 311 app's key goes in the form, not in a header: no header opens its rows (the key test is below).
EXPECTED = """
who            anonymous  agent  supervisor  other-agent  other-supervisor  admin  internal  sms-provider
public         in         in     in          in           in                in     in        in
citizen        in         in     in          in           in                in     in        in
case-service   401        in     in          403          403               in     401       401
any-agent      401        in     in          in           in                in     401       401
admin          401        403    403         403          403               in     401       401
internal       401        401    401         401          401               401    in        401
sms-provider   401        401    401         401          401               401    401       in
311-app        403        403    403         403          403               403    403       403
"""


@dataclass(frozen=True)
class Row:
    service: str
    method: str
    path: str
    who: str

    def __str__(self) -> str:
        return f"{self.service} {self.method} {self.path} ({self.who})"


def _lines(table: str) -> Iterator[list[str]]:
    lines = [line.split() for line in table.strip().splitlines()]
    yield from lines[1:]  # the header names the columns


def _rows() -> list[Row]:
    rows: list[Row] = []
    for service, methods, path, who in _lines(MATRIX):
        assert who in WHO, f"{service} {path}: {who!r} is not one of {', '.join(WHO)}"
        rows.extend(Row(service, method, path, who) for method in methods.split(","))
    return rows


ROWS = _rows()
CALLERS = EXPECTED.strip().splitlines()[0].split()[1:]
OUTCOMES: dict[str, dict[str, str]] = {
    who: dict(zip(CALLERS, got, strict=True)) for who, *got in _lines(EXPECTED)
}
AGENT_TOKEN_ROWS = [row for row in ROWS if row.who in ("case-service", "any-agent", "admin")]


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers: its API routes, the docs, and its static mounts."""
    found = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            found.add(("GET", f"{route.path}/{{path:path}}"))
        elif route.path is not None:
            found.update((method, route.path) for method in route.methods or ())
    return found


def test_every_route_has_its_row_in_the_matrix(stack: Stack) -> None:
    for service in SERVICES:
        served = served_routes(stack.apps[service])
        listed = {(row.method, row.path) for row in ROWS if row.service == service}
        assert served - listed == set(), f"{service}: routes without a row in the matrix (who may call them?)"
        assert listed - served == set(), f"{service}: rows for routes the app does not serve"


# --- Callers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """Real values for the path parameters, so that routing matches and the rows reach their checks."""

    case_id: str  # a building permit, urbanisme's
    code: str  # its tracking code
    report_id: str  # a street report, public by id
    report_code: str
    stop_token: str
    open_data: str  # a file of stats' open data

    def path_values(self, service: str) -> dict[str, str]:
        return {
            "case_id": self.report_id if service == "tracking" else self.case_id,
            "code": self.code if service == "tracking" else "permis-construire",
            "document_id": f"doc_{uuid.uuid4().hex}",
            "subscription_id": str(uuid.uuid4()),
            "service_request_id": self.report_id,
            "service_code": "eclairage",
            "procedure": "signalement-voirie",
            "name": self.open_data,
            "token": self.stop_token,
            "rest": "anything/else",
        }


# Routes that would change the real case for good: they are called on a made-up one.
DESTRUCTIVE = {"/v1/admin/cases/{case_id}/erasure"}


def url_of(row: Row, facts: Facts) -> str:
    values = facts.path_values(row.service)
    if row.path in DESTRUCTIVE:
        values = {**values, "case_id": str(uuid.uuid4())}
    if row.path.endswith("/{path:path}"):
        static = "stats.css" if row.path.startswith("/static-stats") else "suivi.css"
        return row.path.replace("{path:path}", static)
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: values[m.group(1)], row.path)


def request_of(row: Row, facts: Facts) -> dict[str, Any]:
    """What a plausible caller sends: the query and body a route reads, enough to reach its checks."""
    queries = {
        "/suivi": {"code": facts.code},
        "/demarches/recu/{case_id}": {"cle": "a-key-the-form-never-had"},
        "/v1/reports/nearby": {
            "procedure": "signalement-voirie",
            "category": "eclairage",
            "address": "3 place du Marché",
        },
    }
    code = facts.report_code if row.path in ("/v1/fix-checks", "/suivi/{code}/repare") else facts.code
    bodies: dict[str, dict[str, Any]] = {
        "/v1/cases/{case_id}/actions": {"json": {"action": "take", "expected_version": 999}},
        "/v1/replies": {"json": {"tracking_code": code, "message": "Voici le document."}},
        "/v1/ratings": {"json": {"tracking_code": code, "rating": 4}},
        "/v1/fix-checks": {"json": {"tracking_code": code, "fixed": True}},
        "/v1/sms/status": {"json": {"reference": str(uuid.uuid4()), "status": "delivered"}},
        "/suivi/reponse": {"data": {"code": code, "message": "Voici le document."}},
        "/suivi/{code}/avis": {"data": {"rating": "4"}},
        "/suivi/{code}/repare": {"data": {"fixed": "yes"}},
        "/open311/v2/requests.json": {"data": {"service_code": "eclairage"}},
        "/open311/v2/requests.xml": {"data": {"service_code": "eclairage"}},
    }
    sent: dict[str, Any] = {"params": queries.get(row.path, {})}
    if row.method in ("POST", "PUT", "PATCH"):
        sent.update(bodies.get(row.path, {"json": {}}))
    return sent


def caller_headers(stack: Stack, tokens: Tokens) -> dict[str, dict[str, str]]:
    headers = {
        "anonymous": {},
        "agent": tokens("agent", "urbanisme", agent="alice"),
        "supervisor": tokens("supervisor", "urbanisme", agent="sam"),
        "other-agent": tokens("agent", "etat-civil", agent="eve"),
        "other-supervisor": tokens("supervisor", "etat-civil", "voirie", agent="oscar"),
        # An admin listed in another service only: admins see every service's cases.
        "admin": tokens("admin", "etat-civil", agent="ada"),
        "internal": stack.internal,
        "sms-provider": {"Authorization": f"Bearer {SMS_PROVIDER_TOKEN}"},
    }
    assert list(headers) == CALLERS
    return headers


async def send(
    stack: Stack, row: Row, facts: Facts, headers: dict[str, str], **changes: Any
) -> httpx.Response:
    sent = {**request_of(row, facts), **changes}
    return await stack[row.service].request(
        row.method, url_of(row, facts), headers={"Accept-Language": "en", **headers}, **sent
    )


@pytest.fixture(scope="module")
async def facts(stack: Stack, module_tokens: Tokens) -> Facts:
    permit = await submit_and_open(stack, module_tokens, "permis-construire")
    report = await submit_and_open(stack, module_tokens, "signalement-voirie")
    index = (await stack["stats"].get("/v1/stats/open-data/")).json()
    names = [file["url"].rsplit("/", 1)[-1] for file in index["files"]]
    secret = stack.apps["notify"].state.settings.link_secret
    return Facts(
        case_id=permit["case_id"],
        code=permit["tracking_code"],
        report_id=report["case_id"],
        report_code=report["tracking_code"],
        stop_token=stop_token(uuid.UUID(permit["case_id"]), secret),
        open_data=names[0],
    )


# --- Every row, every caller -------------------------------------------------------------------------


def _verdict(answer: httpx.Response, expected: str) -> str | None:
    """What is wrong with `answer` for a caller the row should `expected` (None: nothing)."""
    if answer.status_code >= 500:
        return f"{answer.status_code} {answer.text[:200]}"
    if expected == "in":
        return None if answer.status_code not in (401, 403) else f"refused: {answer.text[:200]}"
    if str(answer.status_code) != expected:
        return f"{answer.status_code} where {expected} was due: {answer.text[:200]}"
    if answer.request.method != "HEAD" and not _message(answer).strip():
        return f"{answer.status_code} without a message saying why"
    return None


def _message(answer: httpx.Response) -> str:
    """What a refusal says: a problem's detail, Open311's descriptions (JSON or XML), or the page."""
    if "json" not in answer.headers.get("content-type", ""):
        return answer.text
    body = answer.json()
    if isinstance(body, list):  # Open311: [{"code": 403, "description": "..."}]
        return " ".join(str(error.get("description", "")) for error in body)
    return str(body.get("detail", ""))


async def test_each_route_lets_in_exactly_whom_its_row_names(
    stack: Stack, module_tokens: Tokens, facts: Facts
) -> None:
    callers = caller_headers(stack, module_tokens)
    wrong = []
    for row in ROWS:
        for caller, headers in callers.items():
            expected = OUTCOMES[row.who][caller]
            problem = _verdict(await send(stack, row, facts, headers), expected)
            if problem:
                wrong.append(f"{row} as {caller}: {problem}")
    assert wrong == [], "\n".join(wrong)


async def test_a_missing_token_is_asked_for_the_bearer_way(stack: Stack, facts: Facts) -> None:
    for row in AGENT_TOKEN_ROWS:
        answer = await send(stack, row, facts, {})
        assert answer.status_code == 401, row
        assert answer.json()["type"] == "auth.missing_token", row
        assert answer.headers["WWW-Authenticate"].startswith("Bearer"), row
        assert "Authorization: Bearer" in answer.json()["detail"], row


async def test_a_citizen_route_opens_only_with_the_citizens_secret(stack: Stack, facts: Facts) -> None:
    """The `citizen` rows need no token, the secret is the key: a well-formed one nobody holds is a miss
    (the same answer as an unknown case), never a way in."""
    nobody = replace(
        facts,
        code=tracking_code.generate(),
        report_code=tracking_code.generate(),
        stop_token=stop_token(uuid.UUID(facts.case_id), "not-the-secret-notify-signs-with"),
    )
    rows = [r for r in ROWS if r.who == "citizen"]
    # At once: tracking answers a miss no sooner than a hit (a second), so a miss tells nothing.
    answers = await asyncio.gather(*(send(stack, row, nobody, {}) for row in rows))
    wrong = [
        f"{row}: {a.status_code} {a.text[:300]}"
        for row, a in zip(rows, answers, strict=True)
        if a.status_code != 404
    ]
    assert wrong == [], "\n".join(wrong)


async def test_a_311_app_gets_in_with_its_key_and_only_with_it(stack: Stack, facts: Facts) -> None:
    for row in [r for r in ROWS if r.who == "311-app"]:
        for key, expected in (("not-the-key-of-any-app", "403"), (OPEN311_KEY, "in")):
            data = {"service_code": "eclairage", "api_key": key}
            answer = await send(stack, row, facts, {}, data=data)
            assert _verdict(answer, expected) is None, f"{row} with key {key}: {answer.status_code}"


async def test_the_internal_api_refuses_a_token_that_is_nearly_right(stack: Stack, facts: Facts) -> None:
    good = stack.internal["Authorization"]
    for row in [r for r in ROWS if r.who in ("internal", "sms-provider")]:
        for almost in (good + "x", good[:-1], good.replace("Bearer", "Basic"), good.upper(), "Bearer "):
            answer = await send(stack, row, facts, {"Authorization": almost})
            assert answer.status_code == 401, f"{row} with {almost!r}: {answer.status_code}"


# --- Bad tokens --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forger:
    """Tokens the city's identity provider did not issue, or not for this: each for an admin, who would be
    let in everywhere if the token were good."""

    trusted: Path
    other: Path  # a second key pair, published nowhere

    def claims(self, **changes: Any) -> dict[str, Any]:
        return {**dev_issuer.claims(role="admin", services=["urbanisme"], agent="mallory"), **changes}

    def trusted_kid(self) -> str:
        return str(jwt.get_unverified_header(dev_issuer.sign(self.trusted, self.claims()))["kid"])

    def with_other_key(self, *, kid: str | None = None) -> str:
        """Signed by the other key pair, under its own kid or under `kid`."""
        if kid is None:
            return dev_issuer.sign(self.other, self.claims())
        key = serialization.load_pem_private_key(
            (self.other / dev_issuer.PRIVATE_KEY_FILE).read_bytes(), password=None
        )
        return jwt.encode(self.claims(), key, algorithm="ES256", headers={"kid": kid})  # type: ignore[arg-type]

    def unsigned(self, algorithm: str) -> str:
        """A token whose header names `algorithm` and the trusted kid, with a made-up signature."""

        def part(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

        header = {"alg": algorithm, "typ": "JWT", "kid": self.trusted_kid()}
        return f"{part(header)}.{part(self.claims())}.{'c2lnbmF0dXJl' if algorithm != 'none' else ''}"

    def tokens(self) -> dict[str, tuple[str, str]]:
        """Each forgery, by name: the token and the problem type the answer must give."""
        now = int(time.time())
        sign = dev_issuer.sign
        return {
            "expired": (sign(self.trusted, self.claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600)), "auth.expired_token"),
            "signed by another key": (self.with_other_key(), "auth.unknown_key"),
            "another key under the trusted kid": (self.with_other_key(kid=self.trusted_kid()), "auth.invalid_token"),
            "for another audience": (sign(self.trusted, self.claims(aud="suivi-some-other-app")), "auth.wrong_audience"),
            "from another issuer": (sign(self.trusted, self.claims(iss="https://idp.elsewhere.example")), "auth.wrong_issuer"),
            "not valid yet": (sign(self.trusted, self.claims(nbf=now + 3600, iat=now + 3600)), "auth.not_yet_valid"),
            "without an expiry": (sign(self.trusted, {k: v for k, v in self.claims().items() if k != "exp"}), "auth.missing_claim"),
            "a citizen's role": (sign(self.trusted, self.claims(role="citizen")), "auth.unknown_role"),
            "alg none": (self.unsigned("none"), "auth.refused_algorithm"),
            "alg HS256": (self.unsigned("HS256"), "auth.refused_algorithm"),
            "not a JWT": ("not-a-jwt", "auth.invalid_token"),
        }  # fmt: skip


@pytest.fixture(scope="module")
def forger(issuer: Path, tmp_path_factory: pytest.TempPathFactory) -> Forger:
    other = tmp_path_factory.mktemp("another-issuer")
    dev_issuer.ensure_keys(other)
    return Forger(trusted=issuer, other=other)


async def test_every_agent_route_refuses_a_bad_token_with_401_and_says_why(
    stack: Stack, facts: Facts, forger: Forger
) -> None:
    wrong = []
    for name, (token, problem_type) in forger.tokens().items():
        for row in AGENT_TOKEN_ROWS:
            answer = await send(stack, row, facts, {"Authorization": f"Bearer {token}"})
            body = answer.json() if answer.headers.get("content-type", "").endswith("json") else {}
            if (answer.status_code, body.get("type")) != (401, problem_type):
                wrong.append(f"{row} with a token {name}: {answer.status_code} {answer.text[:200]}")
            elif "{" in body["detail"] or 'error="invalid_token"' not in answer.headers["WWW-Authenticate"]:
                wrong.append(f"{row} with a token {name}: an unclear refusal {body} {answer.headers}")
    assert wrong == [], "\n".join(wrong)


async def test_the_refusals_name_what_to_do_in_the_agents_language(
    stack: Stack, facts: Facts, forger: Forger
) -> None:
    row = next(r for r in AGENT_TOKEN_ROWS if r.path == "/v1/cases/{case_id}")
    tokens = forger.tokens()
    said = {}
    for name in ("expired", "signed by another key", "for another audience", "from another issuer"):
        answer = await send(stack, row, facts, {"Authorization": f"Bearer {tokens[name][0]}"})
        said[name] = answer.json()["detail"]
    assert "expired" in said["expired"]
    assert "key" in said["signed by another key"]
    assert '"suivi-workflow"' in said["for another audience"]
    assert dev_issuer.DEV_ISSUER in said["from another issuer"]
    french = await send(
        stack, row, facts, {"Authorization": f"Bearer {tokens['expired'][0]}", "Accept-Language": "fr"}
    )
    assert "expiré" in french.json()["detail"]


# --- What an agent sees is cut to their services -----------------------------------------------------


async def test_the_queue_shows_an_agent_the_cases_of_their_services_only(
    stack: Stack, module_tokens: Tokens, facts: Facts
) -> None:
    callers = caller_headers(stack, module_tokens)

    async def queued(caller: str) -> set[str]:
        answer = await stack["workflow"].get("/v1/queue", headers=callers[caller], params={"page_size": 200})
        assert answer.status_code == 200, answer.text
        return {item["case_id"] for item in answer.json()["items"]}

    assert facts.case_id in await queued("agent")
    assert facts.case_id in await queued("admin")
    assert facts.case_id not in await queued("other-agent")
    assert facts.report_id in await queued("other-supervisor")  # voirie is one of theirs
    assert facts.report_id not in await queued("agent")


async def test_only_a_street_report_is_public_by_its_id(stack: Stack, facts: Facts) -> None:
    """The public report pages take any id: a building permit's is answered as an unknown one is."""
    for path in ("/signalements/{}", "/open311/v2/requests/{}.json", "/open311/v2/requests/{}.xml"):
        made_up = str(uuid.uuid4())
        permit = await stack["tracking"].get(path.format(facts.case_id))
        unknown = await stack["tracking"].get(path.format(made_up))
        assert (permit.status_code, unknown.status_code) == (404, 404), path
        assert permit.text.replace(facts.case_id, "?") == unknown.text.replace(made_up, "?"), path
