"""Each overlay renders, as `kubectl kustomize` would, into objects the Kubernetes API accepts.

The renderer is tests/deploy/kustomize.py (CI has no kubectl); where kubectl is installed, its own
kustomize must render the same objects. Every object is validated offline against the Kubernetes API
schemas (kubernetes-validate, strict: an unknown or misspelt field fails) of the oldest and the newest
version this targets; the operators' objects (CloudNativePG, Barman Cloud) have no schema there and are
checked field by field in test_postgres.py. The namespaces enforce Pod Security "restricted": a pod that
breaks it would be refused at admission, so every pod template is checked against it here.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.deploy import kustomize
from tests.deploy.manifests import K8S, OVERLAYS, SECRET_EXAMPLE, Manifest, by_hand, rendered

# The oldest Kubernetes these manifests are for (matchLabelKeys in topologySpreadConstraints, the
# PodDisruptionBudget's unhealthyPodEvictionPolicy), and the newest kubernetes-validate knows.
VERSIONS = ("1.31", "1.37")
OPERATOR_GROUPS = ("postgresql.cnpg.io/", "barmancloud.cnpg.io/")
NAMESPACES = {"suivi", "postgres", "observability"}
# Pod Security "restricted": the volume types it allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def label(doc: Manifest) -> str:
    return f"{doc['kind']} {doc['metadata'].get('namespace', '-')}/{doc['metadata']['name']}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl here (CI): the renderer alone runs")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_renders_what_kubectl_kustomize_renders(overlay: str) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", "--load-restrictor=LoadRestrictionsNone", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    theirs = {label(doc): doc for doc in yaml.safe_load_all(out) if doc}
    ours = {label(doc): doc for doc in rendered(overlay)}
    assert sorted(ours) == sorted(theirs)
    different = [name for name in ours if ours[name] != theirs[name]]
    assert not different, f"tests/deploy/kustomize.py renders these otherwise than kubectl: {different}"


def documents_to_validate(overlay: str) -> list[Manifest]:
    return rendered(overlay) + by_hand() + kustomize.load_documents(SECRET_EXAMPLE)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_the_kubernetes_api(overlay: str, version: str) -> None:
    problems = []
    for doc in documents_to_validate(overlay):
        if doc["apiVersion"].startswith(OPERATOR_GROUPS):
            continue  # no schema in kubernetes-validate: test_postgres.py checks them
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{label(doc)}: {exc.message} at {'.'.join(str(p) for p in exc.path)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_lands_in_one_of_suivis_namespaces(overlay: str) -> None:
    docs = rendered(overlay)
    created = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "Namespace"}
    assert created == NAMESPACES
    for doc in docs:
        if doc["kind"] not in kustomize.CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") in NAMESPACES, label(doc)
    for namespace in (d for d in docs if d["kind"] == "Namespace"):
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", label(namespace)


def restricted_problems(pod: dict[str, Any]) -> list[str]:
    """What Pod Security "restricted" would refuse in a pod spec."""
    problems = []
    pod_context = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(flag)
    problems += [f"volume {v['name']}" for v in pod.get("volumes", []) if not RESTRICTED_VOLUMES & v.keys()]
    for box in pod.get("initContainers", []) + pod["containers"]:
        context = box.get("securityContext", {})
        if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
            problems.append(f"{box['name']}: runAsNonRoot")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{box['name']}: allowPrivilegeEscalation")
        if context.get("privileged"):
            problems.append(f"{box['name']}: privileged")
        if "ALL" not in context.get("capabilities", {}).get("drop", []):
            problems.append(f"{box['name']}: capabilities.drop ALL")
        if set(context.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{box['name']}: capabilities.add")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{box['name']}: seccompProfile")
        if any(p.get("hostPort") for p in box.get("ports", [])):
            problems.append(f"{box['name']}: hostPort")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_restricted_as_its_namespace_demands(overlay: str) -> None:
    problems = [
        f"{label(doc)}: {problem}"
        for doc in rendered(overlay) + by_hand()
        if "template" in doc.get("spec", {})
        for problem in restricted_problems(doc["spec"]["template"]["spec"])
    ]
    assert not problems, "\n".join(problems)
