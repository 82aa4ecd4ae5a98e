"""checkov's Kubernetes checks on what production applies: none fails without a reason written here.

checkov runs once (a module fixture) on the production overlay as rendered, one file per object, with
no network (`--skip-download`: no severities then, so every failed check counts). A failed check must be
in EXPLAINED with why it stays; an explained check that no longer fails must leave the list. checkov
lives in its own environment (the Makefile: `.venv/checkov`, linked as `.venv/bin/checkov`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import rendered

EXPLAINED = {
    "CKV_K8S_43": (
        "Image should use digest: CI sets it at release (`kustomize edit set image suivi=<registry>/suivi@sha256:...`"
        " in overlays/production; the collector's when its version is pinned); a digest committed here would"
        " name a stale build. The tag is fixed (CKV_K8S_14 passes)."
    ),
    "CKV_K8S_35": (
        "Secrets as environment variables: the settings read DATABASE_URL, NATS_URL and the tokens from the"
        " environment (pydantic-settings, shared/settings.py); files would need the code to read them. Each key"
        " is named (no envFrom), never in a ConfigMap, and the pods run no shell."
    ),
}


def checkov() -> str:
    beside = Path(sys.executable).parent / "checkov"
    found = str(beside) if beside.exists() else shutil.which("checkov")
    assert found, "checkov is not installed: `make install` puts it in .venv/checkov (see the Makefile)"
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("production")
    for index, doc in enumerate(rendered("production")):
        name = f"{index:02d}-{doc['kind']}-{doc['metadata']['name']}.yaml".lower()
        (folder / name).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [
            checkov(),
            "-d",
            str(folder),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--skip-download",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: some check failed
    parsed = json.loads(result.stdout)
    found: dict[str, Any] = parsed[0] if isinstance(parsed, list) else parsed
    return found


def failed(report: dict[str, Any]) -> dict[str, set[str]]:
    """check id -> the resources it fails on."""
    out: dict[str, set[str]] = {}
    for check in report.get("results", {}).get("failed_checks", []):
        out.setdefault(check["check_id"], set()).add(check["resource"])
    return out


def test_checkov_checked_every_object(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= len(rendered("production")) - 5  # checkov skips a few kinds
    assert summary["passed"] > 300


def test_no_check_fails_without_its_reason(report: dict[str, Any]) -> None:
    unexplained = {check: sorted(where) for check, where in failed(report).items() if check not in EXPLAINED}
    assert not unexplained, (
        f"fix these, or say in EXPLAINED why they stay: {json.dumps(unexplained, indent=1)}"
    )


def test_every_reason_is_still_needed(report: dict[str, Any]) -> None:
    stale = sorted(set(EXPLAINED) - set(failed(report)))
    assert not stale, f"these checks pass now: remove them from EXPLAINED: {stale}"
