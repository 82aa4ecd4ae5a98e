"""Webhook subscriptions: the city's other systems ask for signed deliveries of case events (admin token).

A subscription names a URL and, optionally, the procedures, event types and services it wants; it gets a
signing secret (Standard Webhooks), shown once. Its state, its last attempts, replays, pause and resume,
secret rotation and deletion are here too; the deliveries themselves go out from `webhooks.py`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Request, Response, status

from services.notify import webhook_queries as queries
from services.notify import webhook_rules as rules
from services.notify import webhook_targets as targets
from services.notify.schemas import (
    AttemptPublic,
    ReplayCreate,
    ReplayPublic,
    SecretPublic,
    SecretRotate,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionDetail,
    SubscriptionPublic,
)
from services.notify.settings import NotifySettings
from shared.auth import Agent, CurrentAgent
from shared.deps import CatalogueDep, Pool
from shared.events import event_types
from shared.http import ApiError, Lang
from shared.i18n import translate
from shared.procedures import Catalogue, Role

router = APIRouter(prefix="/v1")
ATTEMPTS_SHOWN = 20


async def _admin(agent: CurrentAgent) -> Agent:
    if agent.role is not Role.ADMIN:
        raise ApiError("auth.forbidden_role", status=403, role=agent.role.value, allowed=Role.ADMIN.value)
    return agent


Admin = Annotated[Agent, Depends(_admin)]


def _invalid(field: str, key: str, lang: str, **params: object) -> ApiError:
    message = translate(key, lang, **params)
    return ApiError("error.invalid_request", status=422, errors=[{"field": field, "message": message}])


def _filter_problems(body: SubscriptionCreate, catalogue: Catalogue, lang: str) -> list[dict[str, str]]:
    known = {
        "procedures": ("notify.unknown_procedure", catalogue.codes()),
        "event_types": ("notify.unknown_event_type", sorted(event_types())),
        "services": (
            "notify.unknown_service",
            sorted({p.service for versions in catalogue.versions.values() for p in versions.values()}),
        ),
    }
    problems = []
    for field, (key, available) in known.items():
        for index, value in enumerate(getattr(body, field) or []):
            if value not in available:
                message = translate(key, lang, value=value, available=", ".join(available))
                problems.append({"field": f"{field}.{index}", "message": message})
    return problems


async def _check_target(url: str, settings: NotifySettings, lang: str) -> list[dict[str, str]]:
    try:
        await targets.check_url(url, targets.parse_allowances(settings.webhook_allow_private))
    except targets.TargetRefused as refused:
        return [{"field": "url", "message": translate(refused.key, lang, **refused.params)}]
    return []


def _public(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["subscription_id"],
        **{key: row[key] for key in ("url", "description", "procedures", "event_types", "services")},
        **{
            key: row[key] for key in ("state", "state_reason", "state_changed_at", "created_at", "created_by")
        },
        "pending": row["pending"],
        "failed": row["failed"],
        "previous_secret_until": row["previous_secret_until"] if row["in_rotation"] else None,
    }


def _unknown(subscription_id: uuid.UUID) -> ApiError:
    return ApiError("notify.subscription_not_found", status=404, id=subscription_id)


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED, response_model=SubscriptionCreated)
async def create_subscription(
    body: SubscriptionCreate, request: Request, agent: Admin, pool: Pool, catalogue: CatalogueDep, lang: Lang
) -> dict[str, Any]:
    """Subscribe a URL to case events. The answer holds the signing secret, shown this once."""
    problems = _filter_problems(body, catalogue, lang)
    problems += await _check_target(body.url, request.app.state.settings, lang)
    if problems:
        raise ApiError("error.invalid_request", status=422, errors=problems)
    secret = rules.new_secret()
    values = {
        **body.model_dump(),
        "subscription_id": uuid.uuid4(),
        "secret": secret,
        "created_by": agent.id,
    }
    async with pool.acquire() as conn:
        row = await queries.create(conn, values=values)
    return {**_public(row), "secret": secret}


@router.get("/subscriptions", response_model=list[SubscriptionPublic])
async def list_subscriptions(agent: Admin, pool: Pool) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [_public(row) for row in await queries.list_all(conn)]


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionDetail)
async def get_subscription(subscription_id: uuid.UUID, agent: Admin, pool: Pool) -> dict[str, Any]:
    """A subscription, its state (and why it is paused or disabled) and its latest attempts."""
    async with pool.acquire() as conn:
        row = await queries.get(conn, subscription_id)
        if row is None:
            raise _unknown(subscription_id)
        attempts = await queries.last_attempts(conn, subscription_id, limit=ATTEMPTS_SHOWN)
    return {**_public(row), "last_attempts": [_attempt(a) for a in attempts]}


def _attempt(row: asyncpg.Record) -> AttemptPublic:
    return AttemptPublic(
        at=row["attempted_at"],
        event_type=row["type"],
        **{k: row[k] for k in ("event_id", "case_id", "stream_seq", "status_code", "duration_ms", "error")},
        outcome=rules.Outcome(row["outcome"]),
    )


@router.post(
    "/subscriptions/{subscription_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReplayPublic,
)
async def replay_subscription(
    subscription_id: uuid.UUID, body: ReplayCreate, agent: Admin, pool: Pool, lang: Lang
) -> dict[str, Any]:
    """Send again the events from a stream position or a time on (those the filters take), delivered
    before or not, in order per case. A paused subscription sends them once resumed."""
    if (body.from_stream_seq is None) == (body.from_time is None):
        raise _invalid("from_stream_seq", "notify.replay_from", lang)
    async with pool.acquire() as conn, conn.transaction():
        row = await queries.get(conn, subscription_id)
        if row is None:
            raise _unknown(subscription_id)
        queued = await queries.replay(
            conn, subscription_id, from_stream_seq=body.from_stream_seq, from_time=body.from_time
        )
    return {"id": subscription_id, "queued": queued, "state": row["state"]}


async def _changed(
    pool: asyncpg.Pool, subscription_id: uuid.UUID, *, resume: bool, agent: Agent
) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        if resume:
            found = await queries.resume(conn, subscription_id)
        else:
            reason = f"paused by {agent.id}"
            found = await queries.set_state(conn, subscription_id, state="paused", reason=reason)
        row = await queries.get(conn, subscription_id) if found else None
    if row is None:
        raise _unknown(subscription_id)
    return _public(row)


@router.post("/subscriptions/{subscription_id}/pause", response_model=SubscriptionPublic)
async def pause_subscription(subscription_id: uuid.UUID, agent: Admin, pool: Pool) -> dict[str, Any]:
    """Stop sending; events keep being queued, and go out on resume."""
    return await _changed(pool, subscription_id, resume=False, agent=agent)


@router.post("/subscriptions/{subscription_id}/resume", response_model=SubscriptionPublic)
async def resume_subscription(subscription_id: uuid.UUID, agent: Admin, pool: Pool) -> dict[str, Any]:
    """Send again: what is queued, and what had failed (first of its case), each with a fresh schedule."""
    return await _changed(pool, subscription_id, resume=True, agent=agent)


@router.post("/subscriptions/{subscription_id}/rotate-secret", response_model=SecretPublic)
async def rotate_secret(
    subscription_id: uuid.UUID, agent: Admin, pool: Pool, body: SecretRotate | None = None
) -> dict[str, Any]:
    """A new signing secret. For `grace_seconds` (default a day) deliveries are signed with both, so the
    receiver can switch to the new one without missing any."""
    grace = (body or SecretRotate()).grace_seconds
    async with pool.acquire() as conn:
        row = await queries.rotate_secret(
            conn, subscription_id, secret=rules.new_secret(), grace_seconds=grace
        )
    if row is None:
        raise _unknown(subscription_id)
    return {
        "id": subscription_id,
        "secret": row["secret"],
        "previous_secret_until": row["previous_secret_until"],
    }


@router.delete("/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_subscription(subscription_id: uuid.UUID, agent: Admin, pool: Pool) -> Response:
    """Delete the subscription, its queued deliveries and its attempts."""
    async with pool.acquire() as conn:
        if not await queries.delete(conn, subscription_id):
            raise _unknown(subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
