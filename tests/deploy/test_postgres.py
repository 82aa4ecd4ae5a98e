"""PostgreSQL as deploy/k8s/postgres describes it: a CloudNativePG cluster that loses no acknowledged
write, logs no citizen's data, has room for every pool, is backed up, and can be restored.

The operators' objects have no schema in kubernetes-validate (test_render.py): their fields are checked
here against what CloudNativePG (postgresql.cnpg.io/v1) and the Barman Cloud plugin
(barmancloud.cnpg.io/v1) require, and against the rest of deploy/k8s (the services' DATABASE_URL, the
Secrets, the autoscalers).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from devtools.servers import NO_PERSONAL_DATA_IN_LOG
from tests.deploy import kustomize
from tests.deploy.manifests import (
    K8S,
    NAMESPACE,
    SERVICES,
    Manifest,
    containers,
    env_entries,
    find,
    rendered,
    resolve,
    secret_examples,
)

POSTGRES = "postgres"
PLUGIN = "barman-cloud.cloudnative-pg.io"
# What PostgreSQL keeps for superusers, and CloudNativePG's own connections (instance manager, replication).
RESERVED_CONNECTIONS = 3 + 10


def cluster(overlay: str) -> Manifest:
    clusters = [doc for doc in rendered(overlay) if doc["kind"] == "Cluster"]
    assert len(clusters) == 1, "one CloudNativePG Cluster per overlay"
    assert clusters[0]["apiVersion"] == "postgresql.cnpg.io/v1"
    assert clusters[0]["metadata"]["namespace"] == POSTGRES
    return clusters[0]


def restore_example() -> Manifest:
    restored: Manifest = kustomize.load_documents(K8S / "postgres" / "restore-cluster.example.yaml")[0]
    return restored


def required_parameters() -> dict[str, str]:
    """The log settings the local server of `make run` and the tests runs with (devtools/servers.py)."""
    values = NO_PERSONAL_DATA_IN_LOG[1::2]
    return dict(value.split("=", 1) for value in values)


@pytest.mark.parametrize("which", ["production", "restored"])
def test_a_commit_waits_for_a_standby_and_no_citizen_data_is_logged(which: str) -> None:
    spec = (cluster("production") if which == "production" else restore_example())["spec"]
    assert spec["instances"] == 3
    assert spec["storage"]["size"]
    synchronous = spec["postgresql"]["synchronous"]
    assert synchronous["method"] in ("any", "first") and synchronous["number"] == 1
    assert synchronous.get("dataDurability", "required") == "required"
    parameters = spec["postgresql"]["parameters"]
    assert all(isinstance(value, str) for value in parameters.values()), "CloudNativePG takes strings"
    assert required_parameters().items() <= parameters.items()
    assert spec["affinity"]["podAntiAffinityType"] == "required", "one instance per node"


def test_there_is_a_connection_for_every_pool_at_the_autoscalers_maximum() -> None:
    """replicas x DB_POOL_MAX per service, one more pod each during a rollout (maxSurge), the Job's."""
    docs = rendered("production")
    needed = 0
    for service in SERVICES:
        deployment = find(docs, "Deployment", service, NAMESPACE)
        scaler = find(docs, "HorizontalPodAutoscaler", service, NAMESPACE)
        assert deployment is not None and scaler is not None
        pool = int(resolve(docs, env_entries(containers(deployment)[0])["DB_POOL_MAX"], secrets="stand-in"))
        surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        needed += (scaler["spec"]["maxReplicas"] + surge) * pool
    job = find(docs, "Job", "suivi-migrate", NAMESPACE)
    assert job is not None
    needed += len(containers(job))  # one connection each (shared/migrate.py)
    available = int(cluster("production")["spec"]["postgresql"]["parameters"]["max_connections"])
    assert needed <= available - RESERVED_CONNECTIONS, (
        f"{needed} connections needed, max_connections {available}"
    )


def test_each_service_connects_as_its_own_role_to_the_clusters_primary() -> None:
    spec = cluster("production")
    name, database = spec["metadata"]["name"], spec["spec"]["bootstrap"]["initdb"]["database"]
    urls = secret_examples()[(NAMESPACE, "suivi-database")]
    managed = {role["name"]: role for role in spec["spec"]["managed"]["roles"]}
    bootstrap = " ".join(spec["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"])
    for service in SERVICES:
        url = urlsplit(urls[service])
        assert url.hostname == f"{name}-rw.{POSTGRES}.svc" and url.port == 5432, f"{service}: the primary"
        assert url.path == f"/{database}" and url.username == f"suivi_{service}", service
        role = managed[f"suivi_{service}"]
        assert role["login"] is True and role.get("ensure", "present") == "present"
        secret = secret_examples().get((POSTGRES, role["passwordSecret"]["name"]), {})
        assert secret.get("username") == role["name"], (
            f"secret.example.yaml: a basic-auth Secret of {role['name']}"
        )
        assert f"CREATE ROLE suivi_{service} LOGIN" in bootstrap
        # PostgreSQL checks CREATE on the database even for CREATE SCHEMA IF NOT EXISTS on an existing one.
        assert f"suivi_{service}" in bootstrap.split("GRANT CREATE ON DATABASE")[1]


def object_store(overlay: str, name: str) -> Manifest:
    store = find(rendered(overlay), "ObjectStore", name, POSTGRES)
    assert store is not None, f"no ObjectStore {name}"
    assert store["apiVersion"] == "barmancloud.cnpg.io/v1"
    return store


def test_wal_is_archived_and_a_base_backup_taken_every_night() -> None:
    spec = cluster("production")
    (plugin,) = spec["spec"]["plugins"]
    assert plugin["name"] == PLUGIN and plugin["isWALArchiver"] is True
    store = object_store("production", plugin["parameters"]["barmanObjectName"])
    configuration = store["spec"]["configuration"]
    assert configuration["destinationPath"].startswith("s3://")
    for credential in configuration["s3Credentials"].values():
        keys = secret_examples().get((POSTGRES, credential["name"]), {})
        assert credential["key"] in keys, f"secret.example.yaml: {credential}"
    assert store["spec"]["retentionPolicy"].endswith("d")
    backups = [doc for doc in rendered("production") if doc["kind"] == "ScheduledBackup"]
    assert len(backups) == 1
    backup = backups[0]["spec"]
    assert backup["cluster"]["name"] == spec["metadata"]["name"]
    assert backup["method"] == "plugin" and backup["pluginConfiguration"]["name"] == PLUGIN
    assert len(backup["schedule"].split()) == 6, "CloudNativePG's schedule has a seconds field first"


def test_the_restored_cluster_reads_the_backups_and_archives_under_its_own_name() -> None:
    production, restored = cluster("production"), restore_example()
    recovery = restored["spec"]["bootstrap"]["recovery"]
    (source,) = [c for c in restored["spec"]["externalClusters"] if c["name"] == recovery["source"]]
    (archiver,) = production["spec"]["plugins"]
    assert source["plugin"]["name"] == PLUGIN
    assert source["plugin"]["parameters"] == {
        "barmanObjectName": archiver["parameters"]["barmanObjectName"],
        "serverName": production["metadata"]["name"],
    }
    assert "targetTime" in recovery["recoveryTarget"]
    (own,) = restored["spec"]["plugins"]
    assert own["isWALArchiver"] is True
    assert own["parameters"]["serverName"] == restored["metadata"]["name"] != production["metadata"]["name"]
    # The services' NetworkPolicies select the database by these labels, whatever the cluster's name.
    assert restored["spec"]["inheritedMetadata"] == production["spec"]["inheritedMetadata"]
    assert restored["spec"]["managed"] == production["spec"]["managed"]


def test_dev_runs_one_instance_without_synchronous_replication_nor_backups() -> None:
    spec = cluster("dev")["spec"]
    assert spec["instances"] == 1
    assert "synchronous" not in spec["postgresql"], "with one instance a commit would wait forever"
    assert "plugins" not in spec
    assert not [doc for doc in rendered("dev") if doc["kind"] in ("ObjectStore", "ScheduledBackup")]
    assert required_parameters().items() <= spec["postgresql"]["parameters"].items()
