"""No personal data on the bus, and one trace per submission across intake, the relay and tracking."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import nats
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from devtools.demo import VALID_DATA
from tests.builders import make_case
from tests.conftest import Env
from tests.waiting import eventually

APPLICANT = {"name": "Zélie Quintanilla-Boudou", "email": "zelie.qb@exemple.fr", "phone": "06 98 76 54 32"}
PRIVATE_WORDS = ["Zélie", "Quintanilla", "zelie.qb", "exemple.fr", "698765432", "98 76 54 32"]


async def test_no_applicant_data_ever_appears_on_the_bus(intake: httpx.AsyncClient, env: Env) -> None:
    nc = await nats.connect(env.nats_url)
    seen: list[bytes] = []

    async def record(msg: nats.aio.msg.Msg) -> None:
        seen.append(msg.subject.encode() + repr(msg.headers).encode() + msg.data)

    await nc.subscribe(">", cb=record)
    try:
        for procedure in VALID_DATA:
            body = make_case(procedure, applicant=APPLICANT)
            assert (await intake.post("/v1/cases", json=body)).status_code == 201
        await eventually(
            lambda: asyncio.sleep(0, result=len([m for m in seen if b"submitted.v1" in m])),
            until=lambda n: n >= len(VALID_DATA),
        )
    finally:
        await nc.close()
    published = [m for m in seen if b"submitted.v1" in m]
    assert len(published) == len(VALID_DATA)
    for message in seen:
        text = message.decode(errors="replace")
        leaked = [w for w in PRIVATE_WORDS if w in text]
        assert not leaked, f"personal data on the bus: {leaked} in {text[:300]}"
    # Identity typed in the forms stays in intake too (birth certificate: the person's names).
    assert not any(b"Camille Louise" in m or b"1990-05-17" in m for m in seen)


def _by_name(spans: tuple[ReadableSpan, ...], prefix: str, kind: SpanKind) -> ReadableSpan:
    matching = [s for s in spans if s.name.startswith(prefix) and s.kind == kind]
    assert matching, f"no {kind.name} span named {prefix}...: {[s.name for s in spans]}"
    return matching[0]


async def test_one_submission_is_one_trace_from_request_to_fold(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    code = (await intake.post("/v1/cases", json=make_case())).json()["tracking_code"]
    assert (await tracking.get(f"/v1/track/{code}")).status_code == 200
    finished = await eventually(
        lambda: asyncio.sleep(0, result=spans.get_finished_spans()),
        until=lambda s: any(x.name.startswith("fold ") for x in s),
    )
    request = _by_name(finished, "POST /v1/cases", SpanKind.SERVER)
    publish = _by_name(finished, "publish fr.suivi.case.submitted.v1", SpanKind.PRODUCER)
    fold = _by_name(finished, "fold fr.suivi.case.submitted.v1", SpanKind.CONSUMER)
    assert request.context is not None and publish.context is not None and fold.context is not None
    assert publish.context.trace_id == request.context.trace_id == fold.context.trace_id
    assert publish.parent is not None and publish.parent.span_id == request.context.span_id
    assert fold.parent is not None and fold.parent.span_id == publish.context.span_id
    assert fold.attributes is not None and fold.attributes["case_id"] == publish.attributes["case_id"]  # type: ignore[index]


async def test_spans_never_carry_a_tracking_code(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    code = (await intake.post("/v1/cases", json=make_case())).json()["tracking_code"]
    for path in (f"/v1/track/{code}", f"/suivi/{code}", f"/suivi?code={code}"):
        assert (await tracking.get(path)).status_code == 200
    recorded = " ".join(f"{s.name} {dict(s.attributes or {})}" for s in spans.get_finished_spans())
    assert "/v1/track/{code}" in recorded
    assert code not in recorded and code.replace("-", "") not in recorded


async def test_a_failed_insert_leaves_no_form_data_in_postgresqls_log(env: Env) -> None:
    conn = await asyncpg.connect(env.database_url)
    try:
        await conn.execute(
            "CREATE TABLE applicants_probe (name text CHECK (length(name) < 5), email text NOT NULL)"
        )
        for args in (("Quintanilla-Boudou", "zelie.qb@exemple.fr"), ("Zélie", None)):
            with pytest.raises(asyncpg.IntegrityConstraintViolationError):
                await conn.execute("INSERT INTO applicants_probe VALUES ($1, $2)", *args)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "CREATE UNIQUE INDEX ON applicants_probe (name); INSERT INTO applicants_probe VALUES ('Zé', 'x'), ('Zé', 'y')"
            )
    finally:
        await conn.close()
    log = (env.pg.data / "server.log").read_text(errors="replace")
    assert "applicants_probe" in log or "violates" in log, "the failures were not logged at all"
    for word in ("Quintanilla", "zelie.qb", "Zélie", "Failing row", "(name)=(Zé)"):
        assert word not in log
