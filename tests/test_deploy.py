"""The Kubernetes manifests in deploy/k8s agree with the code.

Every `services/<name>/app.py` needs a Deployment, a Service, a PodDisruptionBudget and an autoscaler
named <name>; the port, the probes, the uvicorn command and every environment variable a manifest sets
must be ones the code has, and the settings must accept what each overlay gives them. A new service
without its manifest, a renamed setting or a changed port fails here rather than in the cluster. The
overlays are read as `kubectl kustomize` renders them (tests/deploy/kustomize.py); tests/deploy/ checks
the rest (schemas, security, network policies, NATS users, procedures, PostgreSQL, the image).
"""

from __future__ import annotations

import importlib
import os
import tempfile
from functools import cache
from pathlib import Path
from unittest import mock

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from devtools import dev_issuer
from tests.deploy import kustomize
from tests.deploy.manifests import (
    ENVIRONMENT,
    K8S,
    NAMESPACE,
    OVERLAYS,
    SERVICES,
    Manifest,
    containers,
    env_entries,
    env_names_read,
    find,
    pod_labels,
    pod_spec,
    rendered,
    resolve,
    service_of,
    settings_class,
    settings_of,
    workloads,
)

# Paths that stay inside the cluster: probes, API docs, and service-to-service APIs under /internal.
INTERNAL_PREFIXES = ("/healthz", "/readyz", "/docs", "/redoc", "/openapi.json", "/internal")
# The Ingress is the same in every overlay; its tests read production's.
PUBLIC = "production"


# Reading the manifests


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def patch_files() -> set[Path]:
    """Files a kustomization uses as patches, not as resources."""
    return {
        (path.parent / patch["path"]).resolve()
        for path in kustomizations()
        for patch in kustomize.load_documents(path)[0].get("patches", [])
        if "path" in patch
    }


def manifest_files() -> list[Path]:
    """Every YAML file of Kubernetes objects under deploy/k8s: not the kustomizations, their patches, nor
    the Helm values of nats/."""
    return [
        path
        for path in sorted(K8S.rglob("*.yaml"))
        if path.name != "kustomization.yaml"
        and path.resolve() not in patch_files()
        and "nats" not in path.parts
    ]


def deployment(service: str, overlay: str) -> Manifest:
    found = find(rendered(overlay), "Deployment", service, NAMESPACE)
    assert found is not None, (
        f"services/{service}/app.py has no Deployment named {service!r} in the overlay {overlay}: add "
        f"deploy/k8s/base/{service}.yaml (see intake.yaml) and list it in base/kustomization.yaml"
    )
    return found


def container(workload: Manifest) -> Manifest:
    boxes = containers(workload)
    assert len(boxes) == 1, f"{workload['metadata']['name']}: one container per service pod expected"
    return boxes[0]


def container_port(workload: Manifest, name: str = "http") -> int:
    for port in container(workload).get("ports", []):
        if port.get("name") == name:
            number: int = port["containerPort"]
            return number
    raise AssertionError(f"{workload['metadata']['name']}: no container port named {name!r}")


def literal_or_resolved(overlay: str, box: Manifest) -> dict[str, str]:
    return {
        name: resolve(rendered(overlay), entry, secrets="stand-in")
        for name, entry in env_entries(box).items()
    }


# Reading the code


def is_read_by_the_code(name: str, box: Manifest) -> bool:
    # OTEL_* are read by the OpenTelemetry SDK (shared/telemetry.py exports when the endpoint is set).
    return name.startswith("OTEL_") or name.upper() in env_names_read(settings_of(box))


@cache
def app(service: str) -> FastAPI:
    """The service's app, built without starting it (no PostgreSQL, no NATS); agents' keys from a dev issuer."""
    jwks = dev_issuer.ensure_keys(Path(tempfile.mkdtemp()) / "dev-issuer")
    local = {"OIDC_ISSUER": dev_issuer.DEV_ISSUER, "OIDC_JWKS_FILE": str(jwks)}
    with mock.patch.dict(os.environ, local):
        built: FastAPI = importlib.import_module(f"services.{service}.app").create_app()
    return built


def api_paths(service: str) -> set[str]:
    """The paths of the service's OpenAPI document."""
    return set(app(service).openapi()["paths"])


def is_internal(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in INTERNAL_PREFIXES)


def serves(service: str, path: str) -> bool:
    """Whether the app has a route or mount for `path` (any method)."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
    return any(route.matches(scope)[0] != Match.NONE for route in app(service).routes)


# Reading the ingress


def ingress_rules() -> list[tuple[str, str, str, str]]:
    """(host, path, pathType, service) of every rule of every deployed Ingress."""
    return [
        (rule.get("host", "*"), path["path"], path["pathType"], path["backend"]["service"]["name"])
        for doc in rendered(PUBLIC)
        if doc["kind"] == "Ingress"
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]


def ingress_paths(host: str | None = None) -> list[tuple[str, str, str]]:
    """(path, pathType, service) of the rules for `host` (all hosts if None)."""
    return [(p, t, s) for h, p, t, s in ingress_rules() if host is None or h == host]


def hosts_of(service: str) -> set[str]:
    return {h for h, _, _, s in ingress_rules() if s == service}


def matches(path: str, path_type: str, route: str) -> bool:
    if path_type == "Exact":
        return route == path
    prefix = path.rstrip("/")
    return route == path or route.startswith(prefix + "/")


def ingress_target(route: str, host: str | None = None) -> str | None:
    """The service the ingress sends `route` on `host` to: an Exact match first, else the longest Prefix."""
    candidates = [
        (path_type == "Exact", len(path), service)
        for path, path_type, service in ingress_paths(host)
        if matches(path, path_type, route)
    ]
    return max(candidates)[2] if candidates else None


# The manifests as files


def test_every_manifest_parses_and_names_its_kind() -> None:
    paths = manifest_files()
    assert len(paths) > 10, "deploy/k8s has no manifests"
    for path in paths:
        docs = kustomize.load_documents(path)
        assert docs, f"{path.relative_to(K8S)} is empty"
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), f"{path.relative_to(K8S)}: {doc}"
            assert doc["metadata"].get("name"), f"{path.relative_to(K8S)}: a {doc['kind']} without a name"


def test_every_file_a_kustomization_names_exists() -> None:
    missing = []
    for path in kustomizations():
        spec = kustomize.load_documents(path)[0]
        named = list(spec.get("resources", [])) + [p["path"] for p in spec.get("patches", []) if "path" in p]
        named += [
            entry.rpartition("=")[2] for gen in spec.get("configMapGenerator", []) for entry in gen["files"]
        ]
        missing += [f"{path.relative_to(K8S)}: {name}" for name in named if not (path.parent / name).exists()]
    assert not missing, f"kustomizations name files that do not exist: {missing}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_applied_from_the_repository(overlay: str) -> None:
    secrets = [doc["metadata"]["name"] for doc in rendered(overlay) if doc["kind"] == "Secret"]
    assert not secrets, f"Secrets are created out of band, not from a kustomization: {secrets}"


# One Deployment, Service, PodDisruptionBudget and autoscaler per service


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_deployment_and_a_service(service: str, overlay: str) -> None:
    pods = deployment(service, overlay)
    svc = find(rendered(overlay), "Service", service, NAMESPACE)
    assert svc is not None, f"no Service named {service!r}: add it to deploy/k8s/base/{service}.yaml"
    assert svc["spec"]["selector"].items() <= pod_labels(pods).items(), (
        f"Service {service} selects no pod of its own"
    )
    assert service_of(container(pods)) == service, f"Deployment {service} runs another service's code"


@pytest.mark.parametrize("service", SERVICES)
def test_the_container_listens_on_the_port_its_settings_name(service: str) -> None:
    port = settings_class(service).model_fields["port"].default
    pods = deployment(service, PUBLIC)
    command = container(pods)["command"]
    assert container_port(pods) == port, f"{service}: containerPort is not {port} (settings.py)"
    assert command[command.index("--port") + 1] == str(port), f"{service}: uvicorn --port is not {port}"
    svc = find(rendered(PUBLIC), "Service", service, NAMESPACE)
    assert svc is not None
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"], "the Service targets the http port"


@pytest.mark.parametrize("service", SERVICES)
def test_uvicorn_runs_the_factory_without_access_log_behind_the_proxy(service: str) -> None:
    command = container(deployment(service, PUBLIC))["command"]
    assert command[:3] == ["uvicorn", f"services.{service}.app:create_app", "--factory"], command
    # A URL can hold a tracking code: uvicorn's access log would write it down.
    assert "--no-access-log" in command, f"{service}: add --no-access-log"
    # Per-client rate limits need the client's address, not the ingress pod's.
    assert "--proxy-headers" in command, f"{service}: add --proxy-headers"
    assert any(arg.startswith("--forwarded-allow-ips") for arg in command), f"{service}: trust the ingress"


@pytest.mark.parametrize("service", SERVICES)
def test_probes_hit_readyz_and_healthz(service: str) -> None:
    spec = container(deployment(service, PUBLIC))
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{service}: readiness is /readyz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{service}: liveness is /healthz"
    assert spec["startupProbe"]["httpGet"]["path"] in ("/healthz", "/readyz"), f"{service}: startupProbe"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        port = spec[probe]["httpGet"]["port"]
        assert port in ("http", container_port(deployment(service, PUBLIC))), (
            f"{service}: {probe} port {port}"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_pods_are_hardened_and_spread_with_a_disruption_budget(service: str, overlay: str) -> None:
    pods = deployment(service, overlay)
    spec, box = pod_spec(pods), container(pods)
    assert spec["terminationGracePeriodSeconds"] > 0
    assert spec["topologySpreadConstraints"], "replicas must not all land on one node"
    assert spec["automountServiceAccountToken"] is False, "the services never call the Kubernetes API"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001, "the image's user (Dockerfile)"
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    assert box["securityContext"]["allowPrivilegeEscalation"] is False
    assert box["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= box["resources"].keys()
    budget = find(rendered(overlay), "PodDisruptionBudget", service, NAMESPACE)
    assert budget is not None, f"no PodDisruptionBudget named {service!r}"
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels(pods).items()


@pytest.mark.parametrize("service", SERVICES)
def test_production_runs_several_replicas_and_dev_one(service: str) -> None:
    assert deployment(service, "production")["spec"]["replicas"] >= 3
    assert deployment(service, "dev")["spec"]["replicas"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_autoscaled_on_cpu_from_its_replicas(service: str, overlay: str) -> None:
    scaler = find(rendered(overlay), "HorizontalPodAutoscaler", service, NAMESPACE)
    assert scaler is not None, f"no HorizontalPodAutoscaler named {service!r}"
    assert scaler["apiVersion"] == "autoscaling/v2"
    assert scaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": service,
    }
    assert scaler["spec"]["minReplicas"] == deployment(service, overlay)["spec"]["replicas"]
    assert scaler["spec"]["maxReplicas"] > scaler["spec"]["minReplicas"]
    assert [m["resource"]["name"] for m in scaler["spec"]["metrics"] if m["type"] == "Resource"] == ["cpu"]


# The environment, for every Deployment and Job


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_env_var_a_workload_sets_is_read_by_the_code(overlay: str) -> None:
    problems = [
        f"{label}: {name} is read by no setting of {settings_of(box).__module__}"
        for label, workload in workloads(overlay)
        for box in containers(workload)
        for name in env_entries(box)
        if not is_read_by_the_code(name, box)
    ]
    problems += [
        f"{label}: envFrom sets names this test cannot check; list them under env"
        for label, workload in workloads(overlay)
        for box in containers(workload)
        if box.get("envFrom")
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_run_in_the_overlays_mode_with_a_replicated_stream_in_production(overlay: str) -> None:
    for label, workload in workloads(overlay):
        for box in containers(workload):
            env = literal_or_resolved(overlay, box)
            database = env_entries(box).get("DATABASE_URL", {})
            assert "secretKeyRef" in database.get("valueFrom", {}), (
                f"{label}: DATABASE_URL comes from a Secret"
            )
            if "shared.migrate" in " ".join(box["command"]):
                continue  # it applies migrations, nothing else: neither mode nor stream matters
            assert env.get("ENVIRONMENT") == ENVIRONMENT[overlay], f"{label}: ENVIRONMENT"
            replicas = int(env.get("STREAM_REPLICAS", "1"))
            assert replicas >= 3 if overlay == "production" else replicas == 1, f"{label}: STREAM_REPLICAS"
            nats = env_entries(box).get("NATS_URL", {})
            assert "secretKeyRef" in nats.get("valueFrom", {}), (
                f"{label}: NATS_URL (its password) from a Secret"
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_links_are_off(overlay: str) -> None:
    """With them on, Kubernetes sets INTAKE_PORT=tcp://10.x.y.z:8001 in every pod of the namespace (one
    <SERVICE>_PORT per Service), and IntakeSettings reads INTAKE_PORT as an int: the pod would not start."""
    for label, workload in workloads(overlay):
        assert pod_spec(workload).get("enableServiceLinks") is False, (
            f"{label}: set enableServiceLinks: false"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_settings_accept_what_each_workload_sets(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for label, workload in workloads(overlay):
        for box in containers(workload):
            settings = settings_of(box)
            with monkeypatch.context() as env:
                for name in env_names_read(settings):
                    env.delenv(name, raising=False)
                    env.delenv(name.lower(), raising=False)
                for name, value in literal_or_resolved(overlay, box).items():
                    env.setenv(name, value)
                made = settings()
            if "shared.migrate" not in " ".join(box["command"]):
                assert made.environment == ENVIRONMENT[overlay], label


# The ingress


def test_ingress_backends_are_deployed_services() -> None:
    for path, _, service in ingress_paths():
        assert service in SERVICES, f"ingress path {path} goes to {service!r}, which is no service"
        assert find(rendered(PUBLIC), "Service", service, NAMESPACE) is not None, (
            f"{path}: no Service {service}"
        )


def test_each_ingress_path_is_served_by_its_backend() -> None:
    for path, path_type, service in ingress_paths():
        probes = [path] if path_type == "Exact" else [path, path.rstrip("/") + "/x"]
        under = path_type == "Prefix" and any(matches(path, path_type, route) for route in api_paths(service))
        assert under or any(serves(service, probe) for probe in probes), (
            f"ingress path {path} goes to {service}, which serves nothing there"
        )


def test_no_internal_path_is_reachable_through_the_ingress() -> None:
    for prefix in INTERNAL_PREFIXES:
        for probe in (prefix, prefix + "/x"):
            target = ingress_target(probe)
            assert target is None, f"{probe} is internal but the ingress sends it to {target}"


def test_every_public_api_path_reaches_its_service_through_the_ingress() -> None:
    """For each service behind the ingress, each path of its OpenAPI document that is not internal."""
    problems = [
        f"{service} serves {route} but the ingress sends it on {host} to {ingress_target(route, host)}: route "
        f"it to {service} in deploy/k8s/base/ingress.yaml, or move it under a prefix that is {service}'s own "
        "(Ingress paths are prefixes, they cannot pick a route template)"
        for service in sorted({service for _, _, service in ingress_paths()})
        for host in sorted(hosts_of(service))
        for route in sorted(api_paths(service))
        if not is_internal(route) and ingress_target(route, host) != service
    ]
    assert not problems, "\n".join(problems)
