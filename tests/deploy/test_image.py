"""The Dockerfile builds the one image the manifests run, as they expect to run it.

Read, not built (building takes minutes and a Docker daemon): a build stage installs Suivi with
`pip install .` (its runtime dependencies, never the dev extras); the runtime stage copies that
environment and procedures/ without the build stage's tools, runs as the uid the pods demand, and points
PROCEDURES_DIR where the manifests mount the procedures; .dockerignore keeps everything else out.
"""

from __future__ import annotations

import re

from tests.deploy.manifests import NAMESPACE, REPO, containers, env_entries, pod_spec, rendered

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction, arguments in instructions():
        if instruction == "FROM":
            found.append([])
        if found:
            found[-1].append((instruction, arguments))
    return found


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    pairs = [pair for instruction, args in stage if instruction == "ENV" for pair in args.split()]
    return dict(pair.split("=", 1) for pair in pairs)


def test_a_build_stage_installs_suivi_without_its_dev_extras() -> None:
    *builds, _ = stages()
    assert builds, "multi-stage: the build tools stay in a build stage"
    runs = " ".join(args for stage in builds for instruction, args in stage if instruction == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs), "pip install . (pyproject.toml's runtime dependencies)"
    assert "[dev]" not in DOCKERFILE.read_text(encoding="utf-8") and " -e " not in runs


def test_the_runtime_stage_has_no_build_tools_and_runs_as_the_pods_user() -> None:
    runtime = stages()[-1]
    assert "slim" in runtime[0][1], "the runtime stage starts from a slim image"
    runs = " ".join(args for instruction, args in runtime if instruction == "RUN")
    assert not re.search(r"\b(gcc|build-essential|make|pip install)\b", runs), runs
    assert any(instruction == "COPY" and args.startswith("--from=") for instruction, args in runtime)
    (user,) = [args for instruction, args in runtime if instruction == "USER"]
    uids = {
        pod_spec(doc)["securityContext"]["runAsUser"]
        for doc in rendered("production")
        if doc["kind"] in ("Deployment", "Job") and doc["metadata"]["namespace"] == NAMESPACE
    }
    assert {int(user.split(":")[0])} == uids == {10001}


def test_procedures_are_in_the_image_where_the_manifests_mount_them() -> None:
    runtime = stages()[-1]
    env = env_of(runtime)
    (copied,) = [
        args.split()[-1]
        for instruction, args in runtime
        if instruction == "COPY" and args.startswith("procedures")
    ]
    assert env["PROCEDURES_DIR"] == copied.rstrip("/")
    assert env["GAZETTEER_FILE"] == f"{copied.rstrip('/')}/streets.csv"
    for doc in rendered("production"):
        if doc["kind"] == "Deployment" and doc["metadata"]["namespace"] == NAMESPACE:
            assert env_entries(containers(doc)[0])["PROCEDURES_DIR"]["value"] == env["PROCEDURES_DIR"]
    assert "/opt/suivi/bin" in env["PATH"], "uvicorn and python of the environment come first"


def test_the_build_context_is_only_what_the_dockerfile_copies() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "start from nothing, then let in what is copied"
    let_in = {line[1:] for line in lines if line.startswith("!")}
    copied = {
        args.split()[0]
        for stage in stages()
        for instruction, args in stage
        if instruction == "COPY" and not args.startswith("--from=")
    }
    assert {source.rstrip("/") for source in copied} == let_in
