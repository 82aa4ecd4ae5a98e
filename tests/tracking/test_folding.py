"""tracking folds workflow's events in the workflow's order, once each, whatever order they arrive in.

workflow is not needed: its events are made here and published straight to JetStream, as its relay would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import nats
import pytest
from nats.js import JetStreamContext

from services.tracking.app import create_app as create_tracking
from shared import tracking_code
from shared.events import STREAM, Envelope, EventData, make_envelope, subject_for
from shared.events.intake import CaseSubmitted
from shared.events.workflow import CaseAssigned, CaseOpened, DeadlineApproaching, DeadlinePassed, StepChanged
from tests.builders import make_case
from tests.conftest import Env, _client, tracking_settings
from tests.waiting import eventually, query, scalar

PROCEDURE = "permis-construire"


class Workflow:
    """Stands in for workflow: numbers one case's events and publishes them to JetStream."""

    def __init__(self, js: JetStreamContext, case_id: uuid.UUID, legal_deadline: date) -> None:
        self.js, self.case_id, self.legal_deadline = js, case_id, legal_deadline
        self.start = datetime.now(UTC)

    def at(self, version: int) -> datetime:
        return self.start + timedelta(minutes=version)

    def opened(self) -> CaseOpened:
        return CaseOpened(
            case_id=self.case_id,
            version=1,
            procedure=PROCEDURE,
            procedure_version=1,
            service="urbanisme",
            step="received",
            legal_deadline=self.legal_deadline,
            opened_at=self.at(1),
        )

    def moved(
        self,
        version: int,
        action: str,
        from_step: str,
        to_step: str,
        *,
        clock_paused: bool = False,
        outcome: str | None = None,
        tacit: bool = False,
    ) -> StepChanged:
        return StepChanged(
            case_id=self.case_id,
            version=version,
            action=action,
            from_step=from_step,
            to_step=to_step,
            actor="system" if tacit else "agent",
            by=None if tacit else "agent-7f3a",
            at=self.at(version),
            clock_paused=clock_paused,
            legal_deadline=self.legal_deadline,
            outcome=outcome,
            tacit=tacit,
        )

    async def publish(
        self, data: EventData, *, event_id: uuid.UUID | None = None, dedupe: bool = True
    ) -> tuple[uuid.UUID, int]:
        """Publish one event; returns its id and stream sequence. `dedupe=False` leaves out Nats-Msg-Id,
        as a relay republishing after the duplicate window would."""
        envelope = make_envelope(data, case_id=self.case_id, procedure=PROCEDURE, event_id=event_id)
        ack = await self.js.publish(
            subject_for(procedure=PROCEDURE, case_id=self.case_id, event=data),
            envelope.model_dump_json().encode(),
            stream=STREAM,
            headers={"Nats-Msg-Id": str(envelope.id)} if dedupe else None,
        )
        return envelope.id, ack.seq


@pytest.fixture
async def js(tracking: httpx.AsyncClient, env: Env) -> AsyncIterator[JetStreamContext]:
    """JetStream, once tracking has created the stream."""
    nc = await nats.connect(env.nats_url)
    yield nc.jetstream()
    await nc.close()


async def submitted(intake: httpx.AsyncClient, tracking: httpx.AsyncClient) -> tuple[str, uuid.UUID, date]:
    """A case submitted through intake and already folded by tracking."""
    case = (await intake.post("/v1/cases", json=make_case(PROCEDURE))).json()
    assert (await tracking.get(f"/v1/track/{case['tracking_code']}")).status_code == 200
    return case["tracking_code"], uuid.UUID(case["case_id"]), date.fromisoformat(case["legal_deadline"])


async def seen(tracking: httpx.AsyncClient, code: str, *, version: int, lang: str = "en") -> dict[str, Any]:
    """The case as tracking shows it once it reached `version` (a Nak'd event may take a few seconds)."""
    view: dict[str, Any] = await eventually(
        lambda: _view(tracking, code, lang=lang),
        until=lambda v: v.get("version", 0) >= version,
    )
    assert view.get("version") == version, view
    return view


async def _view(tracking: httpx.AsyncClient, code: str, *, lang: str) -> dict[str, Any]:
    answer = await tracking.get(f"/v1/track/{code}", params={"lang": lang})
    body: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
    return body


async def folded_up_to(env: Env, seq: int) -> None:
    await eventually(
        lambda: scalar(env.database_url, "SELECT max(stream_seq) FROM tracking.consumer_positions"),
        until=lambda reached: reached is not None and reached >= seq,
    )


async def test_a_request_for_documents_is_the_citizens_turn_with_the_clock_on_hold(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, js: JetStreamContext
) -> None:
    code, case_id, deadline = await submitted(intake, tracking)
    workflow = Workflow(js, case_id, deadline)

    await workflow.publish(workflow.opened())
    await workflow.publish(
        CaseAssigned(case_id=case_id, version=2, assignee="agent-7f3a", by="agent-7f3a", at=workflow.at(2))
    )
    await workflow.publish(workflow.moved(3, "start-check", "received", "completeness-check"))
    await workflow.publish(
        workflow.moved(4, "request-documents", "completeness-check", "documents-requested", clock_paused=True)
    )

    view = await seen(tracking, code, version=5)
    assert view["status"]["step"] == "documents-requested"
    assert view["status"]["label"] == "Additional documents requested"
    assert view["status"]["turn"] == "citizen" and view["status"]["turn_label"] == "Your turn"
    assert view["status"]["awaiting_reply"] is True
    assert view["status"]["since"].startswith(workflow.at(4).isoformat()[:19])
    assert view["clocks"]["clock_paused"] is True
    assert view["clocks"]["days_left"] is None
    assert view["clocks"]["legal_deadline"] == deadline.isoformat()
    assert [(h["kind"], h["step"]) for h in view["history"]] == [
        ("submitted", "received"),
        ("step-changed", "completeness-check"),
        ("step-changed", "documents-requested"),
    ]
    assert "agent-7f3a" not in str(view), "who handles a case is not public"

    page = await tracking.get(f"/suivi/{code}", params={"lang": "fr"})
    assert "Le délai est suspendu en attendant votre réponse" in page.text
    assert "Comment répondre" in page.text
    page = await tracking.get(f"/suivi/{code}", params={"lang": "en"})
    assert "The deadline is on hold until you reply" in page.text


async def test_events_arriving_out_of_order_are_applied_in_order(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    code, case_id, deadline = await submitted(intake, tracking)
    workflow = Workflow(js, case_id, deadline)

    await workflow.publish(workflow.moved(3, "start-review", "completeness-check", "review"))
    await workflow.publish(workflow.opened())
    await workflow.publish(workflow.moved(2, "start-check", "received", "completeness-check"))

    view = await seen(tracking, code, version=4)
    assert view["status"]["step"] == "review"
    assert [h["step"] for h in view["history"]] == ["received", "completeness-check", "review"]
    assert [s["state"] for s in view["steps"]][:3] == ["done", "done", "current"]
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.dead_letters") == 0


async def test_a_duplicate_changes_nothing(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    code, case_id, deadline = await submitted(intake, tracking)
    workflow = Workflow(js, case_id, deadline)
    await workflow.publish(workflow.opened())
    check = workflow.moved(2, "start-check", "received", "completeness-check")
    check_id, _ = await workflow.publish(check)
    before = await seen(tracking, code, version=3)

    # The very same event again, past JetStream's duplicate window; then a stale writer's event.
    await workflow.publish(check, event_id=check_id, dedupe=False)
    stale_id, last = await workflow.publish(workflow.moved(2, "start-review", "completeness-check", "review"))
    await folded_up_to(env, last)

    assert await _view(tracking, code, lang="en") == before
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.cases, unnest(history)") == 2
    folded = {r[0] for r in await query(env.database_url, "SELECT event_id FROM tracking.folded_events")}
    assert {check_id, stale_id} <= folded


async def test_an_event_for_a_case_not_folded_yet_waits_for_it(
    tracking: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    case_id, code = uuid.uuid4(), tracking_code.generate()
    deadline = datetime.now(UTC).date() + timedelta(days=61)
    workflow = Workflow(js, case_id, deadline)
    opened_id, _ = await workflow.publish(workflow.opened())
    await workflow.publish(workflow.moved(2, "start-check", "received", "completeness-check"))

    # Not folded, and not recorded as folded either: it comes back once the case is there.
    await asyncio.sleep(1.5)  # a few redeliveries
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.cases") == 0
    assert (
        await scalar(
            env.database_url, "SELECT count(*) FROM tracking.folded_events WHERE event_id = $1", opened_id
        )
        == 0
    )

    await workflow.publish(
        CaseSubmitted(
            case_id=case_id,
            tracking_code_digest=tracking_code.digest(code),
            procedure=PROCEDURE,
            procedure_version=1,
            service="urbanisme",
            channel="web",
            language="fr",
            submitted_at=workflow.start,
            legal_deadline=deadline,
            first_step="received",
            facts={"district": "est"},
        )
    )
    view = await seen(tracking, code, version=3)
    assert view["status"]["step"] == "completeness-check"
    assert view["clocks"]["legal_deadline"] == deadline.isoformat()


async def test_a_tacit_decision_after_the_deadline_closes_the_case(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, js: JetStreamContext
) -> None:
    code, case_id, deadline = await submitted(intake, tracking)
    workflow = Workflow(js, case_id, deadline)
    for event in (
        workflow.opened(),
        workflow.moved(2, "start-check", "received", "completeness-check"),
        workflow.moved(3, "start-review", "completeness-check", "review"),
        DeadlineApproaching(
            case_id=case_id, version=4, legal_deadline=deadline, days_left=3, at=workflow.at(4)
        ),
        DeadlinePassed(case_id=case_id, version=5, legal_deadline=deadline, step="review", at=workflow.at(5)),
        workflow.moved(6, "decide-by-silence", "review", "tacitly-accepted", outcome="accepted", tacit=True),
    ):
        await workflow.publish(event)

    view = await seen(tracking, code, version=7)
    status, clocks = view["status"], view["clocks"]
    assert (status["step"], status["final"], status["outcome"]) == ("tacitly-accepted", True, "accepted")
    assert status["label"] == "Permit granted by silence"
    assert (status["turn"], status["awaiting_reply"]) == ("none", False)
    assert clocks["days_left"] is None and clocks["legal_deadline"] == deadline.isoformat()
    assert [(h["kind"], h["label"]) for h in view["history"]][-2:] == [
        ("deadline-passed", "Legal deadline passed without a decision"),
        ("step-changed", "Permit granted by silence"),
    ]
    french = await _view(tracking, code, lang="fr")
    assert french["history"][-2]["label"] == "Délai légal dépassé sans décision"


async def test_an_event_type_from_a_newer_workflow_does_not_hold_up_the_ones_after_it(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    code, case_id, deadline = await submitted(intake, tracking)
    workflow = Workflow(js, case_id, deadline)
    await workflow.publish(workflow.opened())
    # Version 2 is of a type this release of tracking does not know (a newer workflow published it).
    newer = Envelope(
        id=uuid.uuid4(),
        source="suivi/workflow",
        type="fr.suivi.case.escalated.v1",
        subject=str(case_id),
        time=workflow.at(2),
        dataschema="https://suivi.example/schemas/events/fr.suivi.case.escalated.v1.json",
        procedure=PROCEDURE,
        data={"case_id": str(case_id), "version": 2, "to": "supervisor"},
    )
    await js.publish(f"case.{PROCEDURE}.{case_id}.escalated", newer.model_dump_json().encode(), stream=STREAM)
    await workflow.publish(workflow.moved(3, "start-check", "received", "completeness-check"))

    view = await seen(tracking, code, version=4)  # the submission, then workflow's versions 1 to 3
    assert view["status"]["step"] == "completeness-check"
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.dead_letters") == 0


async def test_waiting_for_an_earlier_event_uses_up_no_delivery(
    intake: httpx.AsyncClient, env: Env, issuer: Any
) -> None:
    # Short pauses, and a handler failure would be set aside at once: only waiting can keep it alive.
    settings = tracking_settings(env, consumer_retry_max_seconds=0.1, consumer_poison_attempts=1)
    async for tracking in _client(create_tracking(settings)):
        code, case_id, deadline = await submitted(intake, tracking)
        nc = await nats.connect(env.nats_url)
        try:
            workflow = Workflow(nc.jetstream(), case_id, deadline)
            await workflow.publish(workflow.moved(2, "start-check", "received", "completeness-check"))
            await asyncio.sleep(4)  # delivered far more than the 12 times JetStream once allowed
            await workflow.publish(workflow.opened())
            view = await seen(tracking, code, version=3)
        finally:
            await nc.close()
    assert view["status"]["step"] == "completeness-check"
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.dead_letters") == 0
