"""The services' traces and metrics reach the OpenTelemetry collector of deploy/k8s/observability.

Every service exports OTLP over HTTP (shared/telemetry.py) to OTEL_EXPORTER_OTLP_ENDPOINT: that must be
the collector's Service, whose port leads to the collector's OTLP HTTP receiver, and the collector must
batch both signals into an exporter; its probes hit its health_check extension.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.manifests import (
    NAMESPACE,
    OVERLAYS,
    SERVICES,
    Manifest,
    containers,
    env_entries,
    find,
    rendered,
    resolve,
)

COLLECTOR, OBSERVABILITY = "otel-collector", "observability"


def collector_config(overlay: str) -> dict[str, Any]:
    config_map = find(rendered(overlay), "ConfigMap", COLLECTOR, OBSERVABILITY)
    assert config_map is not None
    config: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return config


def collector(overlay: str) -> Manifest:
    deployment = find(rendered(overlay), "Deployment", COLLECTOR, OBSERVABILITY)
    assert deployment is not None
    return deployment


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_each_service_exports_to_the_collectors_otlp_http_receiver(service: str, overlay: str) -> None:
    docs = rendered(overlay)
    deployment = find(docs, "Deployment", service, NAMESPACE)
    assert deployment is not None
    env = env_entries(containers(deployment)[0])
    url = urlsplit(resolve(docs, env["OTEL_EXPORTER_OTLP_ENDPOINT"], secrets="stand-in"))
    assert url.scheme == "http" and url.hostname == f"{COLLECTOR}.{OBSERVABILITY}.svc"
    service_ = find(docs, "Service", COLLECTOR, OBSERVABILITY)
    assert service_ is not None
    (port,) = [p for p in service_["spec"]["ports"] if p["port"] == url.port]
    (box,) = containers(collector(overlay))
    (target,) = [p["containerPort"] for p in box["ports"] if p["name"] == port["targetPort"]]
    receiver = collector_config(overlay)["receivers"]["otlp"]["protocols"]
    assert set(receiver) == {"http"}, "the services export OTLP over HTTP, not gRPC"
    assert port_of(receiver["http"]["endpoint"]) == target == 4318
    assert env["OTEL_SERVICE_NAME"]["value"] == f"suivi-{service}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_collector_batches_traces_and_metrics_into_an_exporter_and_reports_its_health(
    overlay: str,
) -> None:
    config = collector_config(overlay)
    for signal in ("traces", "metrics"):
        pipeline = config["service"]["pipelines"][signal]
        assert pipeline["receivers"] == ["otlp"]
        assert pipeline["processors"][0] == "memory_limiter" and pipeline["processors"][-1] == "batch"
        assert pipeline["exporters"] and set(pipeline["exporters"]) <= set(config["exporters"])
    health = port_of(config["extensions"]["health_check"]["endpoint"])
    assert "health_check" in config["service"]["extensions"]
    (box,) = containers(collector(overlay))
    ports = {p["name"]: p["containerPort"] for p in box["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert ports[box[probe]["httpGet"]["port"]] == health
