"""deploy/k8s as the tests read it: each overlay rendered (tests/deploy/kustomize.py), the files applied by
hand, the example Secrets, and the code a container runs."""

from __future__ import annotations

import importlib
import re
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices

from shared.settings import ServiceSettings
from tests.deploy import kustomize

Manifest = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
SERVICES = sorted(app.parent.name for app in (REPO / "services").glob("*/app.py"))
NAMESPACE = "suivi"
WORKLOAD_KINDS = ("Deployment", "Job")
# In no kustomization: applied by hand in the namespace suivi (README.md).
BY_HAND = (K8S / "tracking-rebuild-job.yaml",)
SECRET_EXAMPLE = K8S / "secret.example.yaml"
# What each overlay's settings must come out as (shared/settings.py).
ENVIRONMENT = {"dev": "development", "production": "production"}


@cache
def _rendered(overlay: str) -> tuple[Manifest, ...]:
    return tuple(kustomize.build(K8S / "overlays" / overlay))


def rendered(overlay: str) -> list[Manifest]:
    """What `kubectl apply` gets for the overlay (read-only: the same objects for every test)."""
    return list(_rendered(overlay))


@cache
def _by_hand() -> tuple[Manifest, ...]:
    return tuple(doc for path in BY_HAND for doc in kustomize.load_documents(path))


def by_hand() -> list[Manifest]:
    return list(_by_hand())


def find(manifests: list[Manifest], kind: str, name: str, namespace: str | None = None) -> Manifest | None:
    for doc in manifests:
        meta = doc["metadata"]
        if doc["kind"] == kind and meta["name"] == name and namespace in (None, meta.get("namespace")):
            return doc
    return None


def workloads(overlay: str) -> list[tuple[str, Manifest]]:
    """(label, manifest) of every Deployment and Job of Suivi's namespace: the overlay's and those by hand."""
    return [
        (f"{overlay}: {doc['kind']} {doc['metadata']['name']}", doc)
        for doc in rendered(overlay) + by_hand()
        if doc["kind"] in WORKLOAD_KINDS and doc["metadata"].get("namespace") == NAMESPACE
    ]


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def containers(workload: Manifest) -> list[Manifest]:
    spec = pod_spec(workload)
    boxes: list[Manifest] = spec.get("initContainers", []) + spec["containers"]
    return boxes


def command_of(box: Manifest) -> str:
    return " ".join(box.get("command", []) + box.get("args", []))


def service_of(box: Manifest) -> str:
    """The service whose code a container runs: `services.<name>.` in its command, or the service whose
    migrations it applies (`python -m shared.migrate <name>`)."""
    command = command_of(box)
    match = re.search(r"\bservices\.(\w+)\.", command) or re.search(r"\bshared\.migrate (\w+)", command)
    assert match, f"container {box['name']}: its command runs no Suivi service's code: {command}"
    return match.group(1)


def settings_of(box: Manifest) -> type[ServiceSettings]:
    """The settings class the container's code reads: the service's, or the shared one for migrations."""
    return ServiceSettings if "shared.migrate" in command_of(box) else settings_class(service_of(box))


def env_entries(box: Manifest) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in box.get("env", [])}


# Values


@cache
def secret_examples() -> dict[tuple[str, str], dict[str, str]]:
    """(namespace, name) -> the keys and example values of every Secret secret.example.yaml shows."""
    return {
        (doc["metadata"]["namespace"], doc["metadata"]["name"]): dict(doc.get("stringData", {}))
        for doc in kustomize.load_documents(SECRET_EXAMPLE)
    }


def resolve(manifests: list[Manifest], entry: Manifest, *, namespace: str = NAMESPACE, secrets: str) -> str:
    """An env entry's value: literal, from the overlay's ConfigMap, or for a Secret's key (which
    secret.example.yaml must show) a stand-in (`secrets="stand-in"`) or the example's value ("example")."""
    if "value" in entry:
        value: str = entry["value"]
        return value
    source = entry["valueFrom"]
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        config = find(manifests, "ConfigMap", ref["name"], namespace)
        found = None if config is None else config.get("data", {}).get(ref["key"])
        assert found is not None, f"{entry['name']}: no key {ref['key']!r} in ConfigMap {ref['name']}"
        return str(found)
    if "fieldRef" in source:
        return f"stand-in-for-{source['fieldRef']['fieldPath']}"
    ref = source["secretKeyRef"]
    example = secret_examples().get((namespace, ref["name"]), {})
    assert ref["key"] in example, (
        f"{entry['name']}: secret.example.yaml does not show key {ref['key']!r} of Secret {ref['name']}"
    )
    return example[ref["key"]] if secrets == "example" else f"stand-in-for-secret-{ref['name']}-{ref['key']}"


# The code


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


def env_name_of(settings: type[ServiceSettings], field_name: str) -> str:
    """The environment variable a field is read from (its first alias)."""
    alias = settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0].upper()
    return (alias if isinstance(alias, str) else field_name).upper()
