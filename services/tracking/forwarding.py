"""What tracking's forms (the rating, the reply) make of intake's answer when they forward to it."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)


def intake_problem(answer: httpx.Response | None, *, what: str) -> dict[str, Any] | None:
    """intake's problem for a 4xx (what the citizen can act on); None for anything else (unreachable,
    a fault on its side): then nothing was recorded, and the page says to try again."""
    if answer is None:
        return None
    body = None
    if 400 <= answer.status_code < 500:
        with contextlib.suppress(ValueError):  # not JSON: not intake's problem
            body = answer.json()
    if not isinstance(body, dict):
        log.warning("intake answered %d to a %s", answer.status_code, what)
        return None
    return body
