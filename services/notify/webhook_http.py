"""One webhook request: to the address that was checked, signed, bounded in time, and what came back.

- The body is the CloudEvent exactly as on the bus, with `Content-Type: application/cloudevents+json`:
  the CloudEvents HTTP binding's type for a structured event, which a CloudEvents SDK on the receiving
  side reads as one (with `application/json` it would look for `ce-*` headers, binary mode).
- `webhook-id` is the event id (receivers dedupe on it), `webhook-timestamp` the time of this try,
  `webhook-signature` one `v1,...` per signing secret (`webhook_rules.signature_header`).
- The target's name is resolved and checked at each try (`webhook_targets.pin`); the request goes to that
  address with the name in `Host` and in TLS's SNI. Redirects are not followed; no proxy is taken from
  the environment. The whole try (resolution included) is bounded by WEBHOOK_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from datetime import UTC, datetime

import httpx
from opentelemetry import propagate

from services.notify import webhook_rules as rules
from services.notify import webhook_targets as targets
from shared.i18n import translate

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
USER_AGENT = "Suivi-Webhooks/1"
# Connections one subscription's worker may hold (it sends up to this many cases' deliveries at once).
CONNECTIONS = 4
# What is read of an answer's body at most (so that its connection can be used again); it is not kept.
DRAIN_BYTES = 16 * 1024
# Who must have signed the targets' TLS certificates: the usual authorities (tests give their own).
TLS_VERIFY: ssl.SSLContext | bool = True


def client(timeout: float) -> httpx.AsyncClient:
    """A client for one subscription's worker: its connections are its own (a connection made for one
    target's name is never used for another's), no proxy from the environment (the request must go to
    the address that was checked), no redirects."""
    return httpx.AsyncClient(
        timeout=timeout,
        verify=TLS_VERIFY,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=CONNECTIONS),
    )


async def send(
    http: httpx.AsyncClient,
    *,
    url: str,
    msg_id: str,
    secrets: list[str],
    body: bytes,
    allowed: targets.Allowances,
    within: float,
) -> rules.Answer:
    """POST one delivery; never raises for what the target (or its name) does: that is the answer."""
    started = time.perf_counter()

    def answer(status_code: int | None, error: str | None, retry_after: float | None = None) -> rules.Answer:
        elapsed = round((time.perf_counter() - started) * 1000)
        return rules.Answer(status_code, error, retry_after, elapsed)

    try:
        async with asyncio.timeout(within):
            target = await targets.pin(url, allowed)
            request = _request(http, target, msg_id=msg_id, secrets=secrets, body=body)
            response = await http.send(request, stream=True)
            await _drain(response)
    except TimeoutError:
        return answer(None, f"no answer within {within:g} s")
    except targets.TargetRefused as exc:
        return answer(None, translate(exc.key, "en", **exc.params))
    except httpx.HTTPError as exc:
        return answer(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    code = response.status_code
    retry_after = rules.retry_after_seconds(code, response.headers.get("retry-after"), now=datetime.now(UTC))
    return answer(code, None if rules.is_success(code) else f"HTTP {code}", retry_after)


def _request(
    http: httpx.AsyncClient, target: targets.PinnedTarget, *, msg_id: str, secrets: list[str], body: bytes
) -> httpx.Request:
    timestamp = int(time.time())
    headers = {
        "Host": target.host_header,
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": rules.signature_header(secrets, msg_id=msg_id, timestamp=timestamp, body=body),
    }
    propagate.inject(headers)  # the W3C traceparent: the receiver may continue the case's trace
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    return http.build_request("POST", target.url, content=body, headers=headers, extensions=extensions)


async def _drain(response: httpx.Response) -> None:
    try:
        read = 0
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read > DRAIN_BYTES:
                break
    finally:
        await response.aclose()
