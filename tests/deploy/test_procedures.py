"""The procedure definitions reach every pod as the ConfigMap suivi-procedures, in procedures/' layout.

Procedures are data: adding one is adding files under procedures/. Here each of those files must be a
key of the generated ConfigMap (its path, '/' written '__', since a key cannot hold a '/') with the
file's content, and every Deployment must mount that key back at its path under PROCEDURES_DIR. The
catalogue is then loaded from a folder laid out as the kubelet lays out a ConfigMap volume (symlinks
into a timestamped folder), as the services load it at start-up.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.intake.settings import IntakeSettings
from shared.places import Gazetteer
from shared.procedures import load_catalogue
from tests.deploy.manifests import NAMESPACE, OVERLAYS, REPO, Manifest, containers, env_entries, rendered

PROCEDURES = REPO / "procedures"
CONFIG_MAP = "suivi-procedures"
# etcd refuses an object over 1 MiB; a ConfigMap is one object.
CONFIG_MAP_LIMIT = 1024 * 1024


def procedure_files() -> dict[str, str]:
    """path under procedures/ -> content, for every file."""
    return {
        path.relative_to(PROCEDURES).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PROCEDURES.rglob("*"))
        if path.is_file()
    }


def key_of(path: str) -> str:
    return path.replace("/", "__")


def generated(overlay: str) -> Manifest:
    found = [
        doc
        for doc in rendered(overlay)
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith(CONFIG_MAP + "-")
    ]
    assert len(found) == 1, f"one generated ConfigMap {CONFIG_MAP}-<hash> expected, found {len(found)}"
    return found[0]


def suivi_deployments(overlay: str) -> list[Manifest]:
    return [
        doc
        for doc in rendered(overlay)
        if doc["kind"] == "Deployment" and doc["metadata"]["namespace"] == NAMESPACE
    ]


def procedures_volume(deployment: Manifest) -> Manifest:
    volumes = [
        v
        for v in deployment["spec"]["template"]["spec"]["volumes"]
        if v.get("configMap", {}).get("name", "").startswith(CONFIG_MAP + "-")
    ]
    assert len(volumes) == 1, f"Deployment {deployment['metadata']['name']} mounts no procedures"
    volume: Manifest = volumes[0]
    return volume


def mount_path(deployment: Manifest, volume: str) -> str:
    box = containers(deployment)[0]
    mounts = [m for m in box.get("volumeMounts", []) if m["name"] == volume]
    assert len(mounts) == 1 and mounts[0].get("readOnly") is True, f"{volume}: mounted once, read-only"
    path: str = mounts[0]["mountPath"]
    return path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_file_of_procedures_is_a_key_of_the_config_map(overlay: str) -> None:
    files, data = procedure_files(), generated(overlay)["data"]
    missing = [f"      - {key_of(p)}=../../../procedures/{p}" for p in files if key_of(p) not in data]
    assert not missing, "add to configMapGenerator in deploy/k8s/base/kustomization.yaml:\n" + "\n".join(
        missing
    )
    assert sorted(data) == sorted(key_of(p) for p in files), "keys for files that procedures/ does not have"
    assert all(data[key_of(p)] == content for p, content in files.items())
    assert sum(len(v.encode()) for v in data.values()) < CONFIG_MAP_LIMIT * 0.9, "split the ConfigMap"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_mounts_each_key_at_its_path_under_procedures_dir(overlay: str) -> None:
    deployments = suivi_deployments(overlay)
    assert len(deployments) >= 5
    files = procedure_files()
    for deployment in deployments:
        volume = procedures_volume(deployment)
        items = {item["key"]: item["path"] for item in volume["configMap"]["items"]}
        missing = [
            f"        - key: {key_of(p)}\n          path: {p}" for p in files if items.get(key_of(p)) != p
        ]
        assert not missing, "add to deploy/k8s/base/procedures-volume.yaml:\n" + "\n".join(missing)
        assert len(items) == len(files), "items for files that procedures/ does not have"
        env = env_entries(containers(deployment)[0])
        assert env["PROCEDURES_DIR"]["value"] == mount_path(deployment, volume["name"])


def test_intakes_street_list_is_the_mounted_one() -> None:
    intake = next(d for d in suivi_deployments("production") if d["metadata"]["name"] == "intake")
    root = env_entries(containers(intake)[0])["PROCEDURES_DIR"]["value"]
    gazetteer = env_entries(containers(intake)[0])["GAZETTEER_FILE"]["value"]
    assert Path(gazetteer).parent == Path(root), "GAZETTEER_FILE is streets.csv of the mounted procedures"
    assert Path(gazetteer).name in procedure_files()


def as_the_kubelet_mounts(config_map: Manifest, volume: Manifest, target: Path) -> None:
    """A ConfigMap volume: the files in a timestamped folder, `..data` a link to it, and each first path
    segment a link into `..data` (what glob and the catalogue loader then walk through)."""
    stamp = target / "..2026_01_01_00_00_00.000000001"
    for item in volume["configMap"]["items"]:
        path = stamp / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config_map["data"][item["key"]], encoding="utf-8")
    os.symlink(stamp.name, target / "..data")
    for top in {item["path"].split("/")[0] for item in volume["configMap"]["items"]}:
        os.symlink(f"..data/{top}", target / top)


def test_the_services_load_the_same_catalogue_from_the_mounted_config_map(tmp_path: Path) -> None:
    deployment = suivi_deployments("production")[0]
    as_the_kubelet_mounts(generated("production"), procedures_volume(deployment), tmp_path)
    mounted, shipped = load_catalogue(tmp_path), load_catalogue(PROCEDURES)
    assert {c: sorted(v) for c, v in mounted.versions.items()} == {
        c: sorted(v) for c, v in shipped.versions.items()
    }
    with_districts = [p.code for p in shipped.all_latest() if p.districts is not None]
    assert with_districts, "a procedure ships its districts.geojson"
    assert all(mounted.latest(code).districts is not None for code in with_districts)  # type: ignore[union-attr]
    settings = IntakeSettings(gazetteer_file=tmp_path / "streets.csv", procedures_dir=tmp_path)
    assert Gazetteer.load(settings.gazetteer_file)
