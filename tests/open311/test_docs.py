"""The Open311 door is documented where it is served: intake's services, tracking's requests (GET and the
POST it forwards); errors as the spec's list, never a 422; every message in every language."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.tracking.app import create_app as create_tracking
from services.tracking.settings import TrackingSettings

ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"""["'](open311\.[a-z_]+)["']""")
OFFLINE: dict[str, Any] = {
    "environment": "test",
    "database_url": "postgresql://nowhere/x",
    "nats_url": "nats://nowhere",
}


def _paths(document: dict[str, object]) -> dict[str, dict[str, dict[str, object]]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {p: item for p, item in paths.items() if p.startswith("/open311/")}


def test_intake_documents_the_services_and_tracking_the_requests() -> None:
    intake = _paths(create_intake(IntakeSettings(**OFFLINE)).openapi())
    tracking = _paths(create_tracking(TrackingSettings(**OFFLINE)).openapi())
    assert sorted(intake) == [
        "/open311/v2/services.json",
        "/open311/v2/services.xml",
        "/open311/v2/services/{service_code}.json",
        "/open311/v2/services/{service_code}.xml",
    ]
    assert sorted(tracking) == [
        "/open311/v2/requests.json",
        "/open311/v2/requests.xml",
        "/open311/v2/requests/{service_request_id}.json",
        "/open311/v2/requests/{service_request_id}.xml",
    ]
    assert set(tracking["/open311/v2/requests.json"]) == {"get", "post"}
    form = tracking["/open311/v2/requests.json"]["post"]["requestBody"]["content"]  # type: ignore[index]
    assert form["application/x-www-form-urlencoded"]["schema"]["required"] == ["api_key", "service_code"]


@pytest.mark.parametrize("service", ["intake", "tracking"])
def test_errors_are_the_spec_s_list_in_the_path_s_format(service: str) -> None:
    app = (
        create_intake(IntakeSettings(**OFFLINE))
        if service == "intake"
        else create_tracking(TrackingSettings(**OFFLINE))
    )
    for path, item in _paths(app.openapi()).items():
        for operation in item.values():
            responses = operation["responses"]
            assert isinstance(responses, dict)
            assert "422" not in responses and "400" in responses, path
            for status, response in responses.items():
                if status == "413":  # refused before the route, by the app's body limit
                    continue
                media = "application/xml" if path.endswith(".xml") else "application/json"
                assert list(response["content"]) == [media], (path, status)
                if media == "application/json" and int(status) >= 400:
                    items = response["content"][media]["schema"]["items"]
                    assert items["$ref"].endswith("/Open311Error"), (path, status)


def test_every_open311_message_exists_in_every_language() -> None:
    sources = [*ROOT.glob("services/**/open311*.py"), *ROOT.glob("shared/open311*.py")]
    used = {key for path in sources for key in KEY.findall(path.read_text(encoding="utf-8"))}
    assert len(used) > 15
    for catalogue in sorted((ROOT / "shared" / "locales").glob("*.json")):
        known = json.loads(catalogue.read_text(encoding="utf-8"))
        assert not sorted(used - set(known)), catalogue.name
        for key in used:  # every placeholder is one the code fills
            assert set(re.findall(r"(?<!\{)\{([a-z_]+)\}(?!\})", known[key])) <= {
                "title",
                "name",
                "code",
                "codes",
                "explanation",
                "format",
                "path",
                "id",
                "days",
                "max",
                "label",
                "original",
            }, (catalogue.name, key)
