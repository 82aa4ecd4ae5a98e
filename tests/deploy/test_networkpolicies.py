"""The NetworkPolicies allow exactly the calls the code makes, and nothing else.

Who calls whom is derived, not listed: each workload's environment (resolved through the overlay's
ConfigMap and secret.example.yaml) names its PostgreSQL, NATS, the collector, the other services it calls
(INTAKE_URL, INTAKE_INTERNAL_URL, NOTIFY_INTERNAL_URL...) and the outside services (the object store, the
identity provider, the SMTP relay, the SMS provider); notify's webhooks go wherever a subscriber says,
on the ports of the schemes it accepts. A setting whose default is another service's local address must
be set, so that a new internal call cannot hide behind its default. Then the policies are evaluated, as
a CNI would, over every pod deploy/k8s knows of (and "outside the cluster" for ipBlocks): each workload's
allowed egress and ingress must equal what was derived, and the database's and the collector's
namespaces must let in exactly those calls. A new call without its policy fails here, and so does a
policy that opens more.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import pytest

from services.notify.webhook_targets import SCHEMES
from tests.deploy.manifests import (
    NAMESPACE,
    Manifest,
    containers,
    env_entries,
    find,
    pod_labels,
    rendered,
    resolve,
    settings_of,
    workloads,
)

OVERLAY = "production"  # the policies are the base's: the same in every overlay
DEFAULT_PORTS = {"http": 80, "https": 443, "nats": 4222, "postgresql": 5432, "postgres": 5432}
# Links written into messages and pages, and the issuer's name: never called.
NOT_CALLS = ("TRACKING_PUBLIC_URL", "NOTIFY_PUBLIC_URL", "OIDC_ISSUER")
HOST_AND_PORT = (("SMTP_HOST", "SMTP_PORT"),)


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: frozenset[tuple[str, str]]


OUTSIDE = Pod("outside the cluster", "", frozenset())
# Pods deploy/k8s does not create, with the labels their makers give them.
INGRESS_CONTROLLER = Pod(
    "ingress-nginx", "ingress-nginx", frozenset({("app.kubernetes.io/name", "ingress-nginx")})
)
DNS = Pod("kube-dns", "kube-system", frozenset({("k8s-app", "kube-dns")}))
NATS = Pod(
    "nats",  # the Helm release `nats` of the official chart (its selector labels)
    "nats",
    frozenset(
        {
            ("app.kubernetes.io/name", "nats"),
            ("app.kubernetes.io/instance", "nats"),
            ("app.kubernetes.io/component", "nats"),
        }
    ),
)
CNPG_OPERATOR = Pod(
    "cloudnative-pg", "cnpg-system", frozenset({("app.kubernetes.io/name", "cloudnative-pg")})
)
TCP = "TCP"

Flow = tuple[Pod, int | None, str | None]  # peer, port, protocol (None: any)


def pod_of(workload: Manifest) -> Pod:
    meta = workload["metadata"]
    return Pod(
        f"{workload['kind']} {meta['name']}", meta["namespace"], frozenset(pod_labels(workload).items())
    )


@cache
def postgres_pod() -> Pod:
    (cluster,) = [doc for doc in rendered(OVERLAY) if doc["kind"] == "Cluster"]
    labels = {
        **cluster["spec"]["inheritedMetadata"]["labels"],
        "cnpg.io/cluster": cluster["metadata"]["name"],
    }
    return Pod(
        f"postgres {cluster['metadata']['name']}", cluster["metadata"]["namespace"], frozenset(labels.items())
    )


@cache
def suivi_workloads() -> tuple[tuple[str, Manifest], ...]:
    return tuple(workloads(OVERLAY))


@cache
def universe() -> tuple[Pod, ...]:
    """Every pod a policy could let in or out: Suivi's, the collector, the database, and the others'."""
    ours = [
        pod_of(doc)
        for doc in rendered(OVERLAY)
        if doc["kind"] in ("Deployment", "Job") and doc["metadata"]["namespace"] != NAMESPACE
    ]
    ours += [pod_of(workload) for _, workload in suivi_workloads()]
    return (*ours, postgres_pod(), NATS, DNS, INGRESS_CONTROLLER, CNPG_OPERATOR)


# What the code calls


def service_target(host: str, port: int) -> tuple[Pod, int]:
    """The pods behind an in-cluster host (`name`, `name.namespace.svc`), and the port they listen on."""
    name, _, rest = host.partition(".")
    namespace = rest.split(".")[0] if rest else NAMESPACE
    if (name, namespace) == ("nats", "nats"):
        return NATS, port
    if (
        namespace == postgres_pod().namespace
        and name == f"{dict(postgres_pod().labels)['cnpg.io/cluster']}-rw"
    ):
        return postgres_pod(), port
    service = find(rendered(OVERLAY), "Service", name, namespace)
    assert service is not None, f"{host}: no such Service in deploy/k8s"
    (service_port,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    selector = service["spec"]["selector"].items()
    (pod,) = [p for p in universe() if p.namespace == namespace and selector <= dict(p.labels).items()]
    (workload,) = [doc for doc in rendered(OVERLAY) if doc["kind"] == "Deployment" and pod_of(doc) == pod]
    target = service_port["targetPort"]
    if isinstance(target, str):
        (target,) = [
            p["containerPort"]
            for b in containers(workload)
            for p in b.get("ports", [])
            if p["name"] == target
        ]
    return pod, int(target)


def destination(value: str) -> tuple[Pod, int] | None:
    url = urlsplit(value)
    if not url.scheme or not url.hostname:
        return None
    port = url.port or DEFAULT_PORTS[url.scheme]
    if "." not in url.hostname or url.hostname.endswith(".svc") or ".svc." in url.hostname:
        return service_target(url.hostname, port)
    return OUTSIDE, port


def calls(workload: Manifest) -> set[Flow]:
    """Where the workload's containers connect to, from their environment (and notify's webhooks)."""
    flows: set[Flow] = {(DNS, 53, "UDP"), (DNS, 53, "TCP")}
    for box in containers(workload):
        env = {
            name: resolve(rendered(OVERLAY), entry, secrets="example")
            for name, entry in env_entries(box).items()
        }
        for name, value in env.items():
            found = None if name in NOT_CALLS else destination(value)
            if found is not None:
                flows.add((found[0], found[1], TCP))
        for host, port in HOST_AND_PORT:
            if host in env:
                flows.add((OUTSIDE, int(env[port]), TCP))
        if "services.notify." in " ".join(box["command"]):
            flows |= {(OUTSIDE, DEFAULT_PORTS[scheme], TCP) for scheme in SCHEMES}
    return flows


def unset_internal_calls(workload: Manifest) -> list[str]:
    """Settings whose default is a Suivi service's local address (a call) that the workload leaves unset."""
    missing = []
    for box in containers(workload):
        if ".app:create_app" not in " ".join(box["command"]):
            continue  # a task (a rebuild, the migrations) reads the settings but serves and calls nothing
        settings, env = settings_of(box), env_entries(box)
        for field_name, field in settings.model_fields.items():
            default = field.default
            if isinstance(default, str) and default.startswith("http://127.0.0.1:800"):
                alias = field.validation_alias
                names = {c.upper() for c in getattr(alias, "choices", [field_name]) if isinstance(c, str)}
                if not names & {*NOT_CALLS, *env}:
                    missing.append(f"{box['name']}: {sorted(names)[0]} (default {default})")
    return missing


# What the policies allow


def matches(selector: Manifest, labels: frozenset[tuple[str, str]]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels is evaluated here: {selector}"
    wanted: dict[str, str] = selector.get("matchLabels", {})
    return wanted.items() <= dict(labels).items()


def peer_selects(peer: Manifest, pod: Pod, namespace: str) -> bool:
    if "ipBlock" in peer:
        return pod is OUTSIDE
    if pod is OUTSIDE:
        return False
    in_namespace = (
        pod.namespace == namespace
        if "namespaceSelector" not in peer
        else matches(peer["namespaceSelector"], frozenset({("kubernetes.io/metadata.name", pod.namespace)}))
    )
    return in_namespace and ("podSelector" not in peer or matches(peer["podSelector"], pod.labels))


def policies_of(pod: Pod, direction: str) -> list[Manifest]:
    return [
        doc
        for doc in rendered(OVERLAY)
        if doc["kind"] == "NetworkPolicy"
        and doc["metadata"]["namespace"] == pod.namespace
        and direction in doc["spec"]["policyTypes"]
        and matches(doc["spec"]["podSelector"], pod.labels)
    ]


def allowed(pod: Pod, direction: str) -> set[Flow]:
    """(peer, port, protocol) the policies let `pod` reach (Egress) or be reached from (Ingress)."""
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    flows: set[Flow] = set()
    for policy in policies_of(pod, direction):
        for rule in policy["spec"].get(rules_key, []):
            assert peers_key in rule, (
                f"{policy['metadata']['name']}: a rule without `{peers_key}` opens to all"
            )
            peers = [
                p
                for p in (*universe(), OUTSIDE)
                if any(peer_selects(x, p, pod.namespace) for x in rule[peers_key])
            ]
            assert peers, f"NetworkPolicy {policy['metadata']['name']}: a rule that selects no known pod"
            ports = [(p["port"], p.get("protocol", TCP)) for p in rule.get("ports", [])] or [(None, None)]
            flows |= {(peer, port, protocol) for peer in peers for port, protocol in ports}
    return flows


def describe(flows: set[Flow]) -> list[str]:
    return sorted(
        f"{peer.name} ({peer.namespace or '-'}) port {port} {protocol}" for peer, port, protocol in flows
    )


# The tests


def test_every_pod_of_suivis_namespaces_is_denied_by_default() -> None:
    for namespace in ("suivi", "observability"):
        deny = find(rendered(OVERLAY), "NetworkPolicy", "default-deny-all", namespace)
        assert deny is not None, f"{namespace}: no default-deny-all"
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_every_call_to_another_service_is_set_in_the_environment() -> None:
    missing = [
        f"{label}: {m}" for label, workload in suivi_workloads() for m in unset_internal_calls(workload)
    ]
    assert not missing, (
        "set these in the manifests (and allow the call in networkpolicies.yaml):\n" + "\n".join(missing)
    )


@pytest.mark.parametrize("label", [label for label, _ in workloads(OVERLAY)])
def test_each_workload_may_reach_exactly_what_it_calls(label: str) -> None:
    workload = dict(suivi_workloads())[label]
    pod = pod_of(workload)
    expected, actual = calls(workload), allowed(pod, "Egress")
    refused, needless = describe(expected - actual), describe(actual - expected)
    assert not refused, f"{label} calls, but may not reach: {refused}"
    assert not needless, f"{label} may reach, but does not call: {needless}"


def callers_of(pod: Pod) -> set[Flow]:
    """Who calls `pod`, from the callers' side (their calls), with the ingress controller for the
    services the Ingress routes to."""
    flows = {
        (pod_of(caller), port, protocol)
        for _, caller in suivi_workloads()
        for target, port, protocol in calls(caller)
        if target == pod
    }
    routed = {
        path["backend"]["service"]["name"]
        for doc in rendered(OVERLAY)
        if doc["kind"] == "Ingress"
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    for name in routed:
        service = find(rendered(OVERLAY), "Service", name, NAMESPACE)
        assert service is not None
        for service_port in service["spec"]["ports"]:
            target, port = service_target(name, service_port["port"])
            if target == pod:
                flows.add((INGRESS_CONTROLLER, port, TCP))
    return flows


@pytest.mark.parametrize("label", [label for label, _ in workloads(OVERLAY)])
def test_each_workload_may_be_reached_exactly_by_its_callers(label: str) -> None:
    pod = pod_of(dict(suivi_workloads())[label])
    expected, actual = callers_of(pod), allowed(pod, "Ingress")
    refused, needless = describe(expected - actual), describe(actual - expected)
    assert not refused, f"{label} is called by, but refuses: {refused}"
    assert not needless, f"{label} lets in, but nobody calls it: {needless}"


def test_the_database_lets_in_its_clients_its_replicas_and_the_operator_only() -> None:
    pod = postgres_pod()
    expected = callers_of(pod) | {(pod, None, None), (CNPG_OPERATOR, 8000, TCP), (CNPG_OPERATOR, 5432, TCP)}
    actual = allowed(pod, "Ingress")
    refused, needless = describe(expected - actual), describe(actual - expected)
    assert not refused and not needless, f"refused: {refused}; let in without a caller: {needless}"


def test_the_collector_lets_in_the_services_otlp_only_and_reaches_only_dns() -> None:
    (collector,) = [p for p in universe() if p.namespace == "observability"]
    expected, actual = callers_of(collector), allowed(collector, "Ingress")
    assert expected, "the services export to the collector (OTEL_EXPORTER_OTLP_ENDPOINT)"
    refused, needless = describe(expected - actual), describe(actual - expected)
    assert not refused and not needless, f"refused: {refused}; let in without a caller: {needless}"
    assert describe(allowed(collector, "Egress")) == describe({(DNS, 53, "UDP"), (DNS, 53, "TCP")})
