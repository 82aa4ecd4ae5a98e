"""The Kubernetes manifests in deploy/k8s agree with the code.

Every `services/<name>/app.py` needs a Deployment and a Service named <name>; the port, the probes, the
uvicorn command and every environment variable a manifest sets must be ones the code has. A new service
without its manifest, a renamed setting or a changed port fails here rather than in the cluster.
"""

from __future__ import annotations

import importlib
import os
import re
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from fastapi import FastAPI
from pydantic import AliasChoices
from starlette.routing import Match

from devtools import dev_issuer
from shared.settings import ServiceSettings

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "k8s"
SERVICES = sorted(app.parent.name for app in (REPO / "services").glob("*/app.py"))
WORKLOAD_KINDS = ("Deployment", "Job")
# Paths that stay inside the cluster: probes, API docs, and service-to-service APIs under /internal.
INTERNAL_PREFIXES = ("/healthz", "/readyz", "/docs", "/redoc", "/openapi.json", "/internal")

Manifest = dict[str, Any]


# Reading the manifests


def documents(path: Path) -> list[Manifest]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def kustomization() -> Manifest:
    return documents(K8S / "kustomization.yaml")[0]


@cache
def deployed() -> list[Manifest]:
    """What `kubectl apply -k deploy/k8s` applies: the documents of the files kustomization.yaml lists."""
    return [doc for name in kustomization()["resources"] for doc in documents(K8S / name)]


@cache
def every_manifest() -> list[Manifest]:
    """Every document of every YAML file in deploy/k8s, applied by kustomize or by hand."""
    return [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in documents(path)
    ]


def find(kind: str, name: str, manifests: list[Manifest] | None = None) -> Manifest | None:
    for doc in deployed() if manifests is None else manifests:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    return None


def deployment(service: str) -> Manifest:
    found = find("Deployment", service)
    assert found is not None, (
        f"services/{service}/app.py has no Deployment named {service!r} among the files "
        f"deploy/k8s/kustomization.yaml lists: add deploy/k8s/{service}.yaml (see intake.yaml)"
    )
    return found


def workloads() -> Iterator[tuple[str, Manifest]]:
    """(label, manifest) of every Deployment and Job, applied by kustomize or by hand."""
    for doc in every_manifest():
        if doc["kind"] in WORKLOAD_KINDS:
            yield f"{doc['kind']} {doc['metadata']['name']}", doc


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Manifest) -> Manifest:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container per pod expected"
    only: Manifest = containers[0]
    return only


def service_of(workload: Manifest) -> str:
    """The service whose code a workload runs, read from its command (services.<name>.something)."""
    command = " ".join(container(workload).get("command", []) + container(workload).get("args", []))
    match = re.search(r"\bservices\.(\w+)\.", command)
    assert match, f"{workload['metadata']['name']}: its command runs no services.<name> module: {command}"
    return match.group(1)


def spec_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def env_entries(workload: Manifest) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in container(workload).get("env", [])}


def literal_env(workload: Manifest) -> dict[str, str]:
    return {name: entry["value"] for name, entry in env_entries(workload).items() if "value" in entry}


def container_port(workload: Manifest, name: str = "http") -> int:
    for port in container(workload).get("ports", []):
        if port.get("name") == name:
            number: int = port["containerPort"]
            return number
    raise AssertionError(f"{workload['metadata']['name']}: no container port named {name!r}")


def config_map_value(name: str, key: str) -> str | None:
    config = find("ConfigMap", name)
    return None if config is None else config.get("data", {}).get(key)


def example_secret_keys(name: str) -> set[str]:
    secret = find("Secret", name, every_manifest())
    return set() if secret is None else set(secret.get("stringData", {})) | set(secret.get("data", {}))


# Reading the code


@cache
def settings_class(service: str) -> type[ServiceSettings]:
    """The one class defined in services/<service>/settings.py whose name ends with Settings."""
    module = importlib.import_module(f"services.{service}.settings")
    classes = [
        obj
        for name, obj in vars(module).items()
        if name.endswith("Settings")
        and isinstance(obj, type)
        and issubclass(obj, ServiceSettings)
        and obj.__module__ == module.__name__  # not one it imports, like a shared base class
    ]
    assert len(classes) == 1, f"services/{service}/settings.py: expected one *Settings class, found {classes}"
    return classes[0]


def env_names_read(settings: type[ServiceSettings]) -> set[str]:
    """The environment variables a settings class reads: its validation_alias names (AliasChoices), or
    for a field without one (like `environment`) the field's own name. pydantic-settings ignores case."""
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(field_name)
    return {name.upper() for name in names}


def is_read_by_the_code(name: str, service: str) -> bool:
    # OTEL_* are read by the OpenTelemetry SDK (shared/telemetry.py exports when the endpoint is set).
    return name.startswith("OTEL_") or name.upper() in env_names_read(settings_class(service))


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
        for doc in deployed()
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
    paths = sorted(K8S.glob("*.yaml"))
    assert paths, "deploy/k8s has no manifests"
    for path in paths:
        docs = documents(path)
        assert docs, f"{path.name} is empty"
        if path.name == "kustomization.yaml":
            continue
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), f"{path.name}: {doc}"
            assert doc["metadata"].get("name"), f"{path.name}: a {doc['kind']} without a name"


def test_every_file_kustomization_lists_exists() -> None:
    missing = [name for name in kustomization()["resources"] if not (K8S / name).is_file()]
    assert not missing, f"kustomization.yaml lists files that do not exist: {missing}"


def test_no_secret_is_applied_from_the_repository() -> None:
    secrets = [doc["metadata"]["name"] for doc in deployed() if doc["kind"] == "Secret"]
    assert not secrets, f"Secrets are created out of band, not from kustomization.yaml: {secrets}"


# One Deployment and one Service per service


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_deployment_and_a_service(service: str) -> None:
    pods = deployment(service)
    svc = find("Service", service)
    assert svc is not None, f"no Service named {service!r}: add it to deploy/k8s/{service}.yaml"
    assert svc["spec"]["selector"].items() <= spec_labels(pods).items(), (
        f"Service {service} selects no pod of its own"
    )
    assert service_of(pods) == service, f"Deployment {service} runs another service's code"


@pytest.mark.parametrize("service", SERVICES)
def test_the_container_listens_on_the_port_its_settings_name(service: str) -> None:
    port = settings_class(service).model_fields["port"].default
    pods = deployment(service)
    command = container(pods)["command"]
    assert container_port(pods) == port, f"{service}: containerPort is not {port} (settings.py)"
    assert command[command.index("--port") + 1] == str(port), f"{service}: uvicorn --port is not {port}"
    svc = find("Service", service)
    assert svc is not None
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"], "the Service targets the http port"


@pytest.mark.parametrize("service", SERVICES)
def test_uvicorn_runs_the_factory_without_access_log_behind_the_proxy(service: str) -> None:
    command = container(deployment(service))["command"]
    assert command[:3] == ["uvicorn", f"services.{service}.app:create_app", "--factory"], command
    # A URL can hold a tracking code: uvicorn's access log would write it down.
    assert "--no-access-log" in command, f"{service}: add --no-access-log"
    # Per-client rate limits need the client's address, not the ingress pod's.
    assert "--proxy-headers" in command, f"{service}: add --proxy-headers"
    assert any(arg.startswith("--forwarded-allow-ips") for arg in command), f"{service}: trust the ingress"


@pytest.mark.parametrize("service", SERVICES)
def test_probes_hit_readyz_and_healthz(service: str) -> None:
    spec = container(deployment(service))
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{service}: readiness is /readyz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{service}: liveness is /healthz"
    assert spec["startupProbe"]["httpGet"]["path"] in ("/healthz", "/readyz"), f"{service}: startupProbe"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        port = spec[probe]["httpGet"]["port"]
        assert port in ("http", container_port(deployment(service))), f"{service}: {probe} port {port}"


@pytest.mark.parametrize("service", SERVICES)
def test_pods_are_replicated_hardened_and_spread(service: str) -> None:
    pods = deployment(service)
    spec, box = pod_spec(pods), container(pods)
    assert pods["spec"]["replicas"] >= 2
    assert spec["terminationGracePeriodSeconds"] > 0
    assert spec["topologySpreadConstraints"], "replicas must not all land on one node"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    assert box["securityContext"]["allowPrivilegeEscalation"] is False
    assert box["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= box["resources"].keys()
    budget = find("PodDisruptionBudget", service)
    assert budget is not None, f"no PodDisruptionBudget named {service!r}"
    assert budget["spec"]["selector"]["matchLabels"].items() <= spec_labels(pods).items()


# The environment, for every Deployment and Job


def test_every_env_var_a_workload_sets_is_read_by_the_code() -> None:
    problems = [
        f"{label}: {name} is read by no setting of services/{service_of(workload)}/settings.py"
        for label, workload in workloads()
        for name in env_entries(workload)
        if not is_read_by_the_code(name, service_of(workload))
    ]
    problems += [
        f"{label}: envFrom sets names this test cannot check; list them under env"
        for label, workload in workloads()
        if container(workload).get("envFrom")
    ]
    assert not problems, "\n".join(problems)


def test_workloads_run_in_production_mode_with_a_replicated_stream() -> None:
    for label, workload in workloads():
        env = literal_env(workload)
        assert env.get("ENVIRONMENT") == "production", f"{label}: ENVIRONMENT must be production"
        assert int(env.get("STREAM_REPLICAS", "1")) >= 3, f"{label}: STREAM_REPLICAS must be 3 or more"
        database = env_entries(workload).get("DATABASE_URL", {})
        assert "secretKeyRef" in database.get("valueFrom", {}), f"{label}: DATABASE_URL comes from a Secret"


def test_service_links_are_off() -> None:
    """With them on, Kubernetes sets INTAKE_PORT=tcp://10.x.y.z:8001 in every pod of the namespace (one
    <SERVICE>_PORT per Service), and IntakeSettings reads INTAKE_PORT as an int: the pod would not start."""
    for label, workload in workloads():
        assert pod_spec(workload).get("enableServiceLinks") is False, (
            f"{label}: set enableServiceLinks: false"
        )


def test_the_settings_accept_what_each_workload_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    for label, workload in workloads():
        settings = settings_class(service_of(workload))
        with monkeypatch.context() as env:
            for name in env_names_read(settings):
                env.delenv(name, raising=False)
                env.delenv(name.lower(), raising=False)
            for name, entry in env_entries(workload).items():
                env.setenv(name, resolve(label, entry))
            assert settings().environment == "production", label


def resolve(label: str, entry: Manifest) -> str:
    """An env entry's value: literal, from a deployed ConfigMap, or a stand-in for a Secret's key (which
    secret.example.yaml must show)."""
    if "value" in entry:
        value: str = entry["value"]
        return value
    source = entry["valueFrom"]
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        found = config_map_value(ref["name"], ref["key"])
        assert found is not None, f"{label}: ConfigMap {ref['name']} has no key {ref['key']!r}"
        return found
    ref = source["secretKeyRef"]
    assert ref["key"] in example_secret_keys(ref["name"]), (
        f"{label}: secret.example.yaml does not show key {ref['key']!r} of Secret {ref['name']}"
    )
    return f"stand-in-for-secret-{ref['name']}-{ref['key']}"


# The ingress


def test_ingress_backends_are_deployed_services() -> None:
    for path, _, service in ingress_paths():
        assert service in SERVICES, f"ingress path {path} goes to {service!r}, which is no service"
        assert find("Service", service) is not None, f"ingress path {path}: no Service {service!r}"


def test_each_ingress_path_is_served_by_its_backend() -> None:
    for path, path_type, service in ingress_paths():
        probes = [path] if path_type == "Exact" else [path, path.rstrip("/") + "/x"]
        assert any(serves(service, probe) for probe in probes), (
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
        f"it to {service} in deploy/k8s/ingress.yaml, or move it under a prefix that is {service}'s own "
        "(Ingress paths are prefixes, they cannot pick a route template)"
        for service in sorted({service for _, _, service in ingress_paths()})
        for host in sorted(hosts_of(service))
        for route in sorted(api_paths(service))
        if not is_internal(route) and ingress_target(route, host) != service
    ]
    assert not problems, "\n".join(problems)
