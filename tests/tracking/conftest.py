"""tracking's browser tests: intake, workflow and tracking as real processes; their page (`tests.browser`)
waits 5 s at most."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import make_case
from tests.conftest import Env, Tokens
from tests.processes import Services, running_services

# A street-light report: an agent of the voirie service fixes it in two actions, which decides it.
PROCEDURE = "signalement-voirie"
FIX_AT_ONCE = ("triage", "fix-at-once")


class Site(Services):
    def decided_case(self) -> str:
        answer = httpx.post(f"{self.intake}/v1/cases", json=make_case(PROCEDURE), timeout=10)
        assert answer.status_code == 201, answer.text
        case = answer.json()
        for action in FIX_AT_ONCE:
            self.act(case["case_id"], action)
        deadline = time.monotonic() + 30
        lookup = f"{self.tracking}/v1/track/{case['tracking_code']}"
        while not httpx.get(lookup, timeout=5).json()["status"]["final"]:
            assert time.monotonic() < deadline, "tracking did not show the decision"
            time.sleep(0.1)
        code: str = case["tracking_code"]
        return code


@pytest.fixture
def site(env: Env, tmp_path: Path, issuer: Path, tokens: Tokens) -> Iterator[Site]:
    with running_services(env.database_url, env.nats_url, logs=tmp_path, issuer=issuer) as urls:
        yield Site(urls["intake"], urls["tracking"], urls["workflow"], tokens("agent", "voirie"))


@pytest.fixture
def page_timeout_ms() -> int:
    return 5000
