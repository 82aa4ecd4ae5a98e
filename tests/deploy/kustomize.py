"""A small kustomize, for the tests: what deploy/k8s's kustomizations use, and nothing more.

`build(folder)` renders a kustomization as `kubectl kustomize --load-restrictor=LoadRestrictionsNone`
does (tests/deploy/test_render.py compares the two wherever kubectl is installed; CI has none, so this is
what runs). Supported: `resources` (files and folders), `namespace`, `configMapGenerator` with `files`
(the name gets kustomize's content hash, and references to it follow), `patches` (strategic-merge, by kind
and name or with a `target`, `$patch: delete`; JSON 6902 `add`/`replace`/`remove`, with a `target` of
kind, name, namespace and labelSelector), `images` and `replicas`. Anything else in a kustomization, or a
strategic-merge list this does not know how to merge, is an error rather than a silent difference:
keep the kustomizations inside this subset, or teach it here.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

KUSTOMIZATION_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "configMapGenerator",
    "patches",
    "images",
    "replicas",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
}
# Strategic merge: the lists merged item by item, and the field that identifies an item.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name"}
REPLICATED_KINDS = {"Deployment", "StatefulSet", "ReplicaSet"}


class Unsupported(Exception):
    """A kustomization uses something this renderer does not do."""


def load_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def build(folder: Path) -> list[Manifest]:
    """The documents `kustomize build folder` prints (in the order of the resources, not kind-sorted)."""
    kustomization = load_documents(folder / "kustomization.yaml")[0]
    unknown = set(kustomization) - KUSTOMIZATION_FIELDS
    if unknown:
        raise Unsupported(f"{folder}/kustomization.yaml: {sorted(unknown)} (see tests/deploy/kustomize.py)")
    resources: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        resources += build(path) if path.is_dir() else [copy.deepcopy(d) for d in load_documents(path)]
    generated = [generate_config_map(folder, spec) for spec in kustomization.get("configMapGenerator", [])]
    resources += [manifest for manifest, _ in generated]
    if namespace := kustomization.get("namespace"):
        for manifest in resources:
            if manifest["kind"] not in CLUSTER_SCOPED:
                manifest["metadata"]["namespace"] = namespace
    for patch in kustomization.get("patches", []):
        resources = apply_patch(folder, patch, resources)
    for image in kustomization.get("images", []):
        set_image(resources, image)
    for replicas in kustomization.get("replicas", []):
        set_replicas(resources, replicas)
    for manifest, original in generated:
        rename_references(resources, manifest, original)
    return resources


# configMapGenerator


def generate_config_map(folder: Path, spec: Manifest) -> tuple[Manifest, str]:
    """The ConfigMap and the name it had before its hash was added."""
    if set(spec) - {"name", "files"}:
        raise Unsupported(f"configMapGenerator {spec['name']}: only name and files")
    data: dict[str, str] = {}
    for entry in spec["files"]:
        key, _, source = entry.rpartition("=") if "=" in entry else ("", "", entry)
        path = folder / source
        data[key or path.name] = path.read_text(encoding="utf-8")
    name = spec["name"]
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-{content_hash(data)}"},
        "data": data,
    }
    return manifest, name


def content_hash(data: dict[str, str]) -> str:
    """kustomize's suffix: sha256 of the Go JSON of kind, data and name (empty: kustomize 5 hashes the
    generated ConfigMap before it is named), its first 10 hex digits with 0, 1, 3, a, e replaced."""
    encoded = json.dumps(
        {"data": data, "kind": "ConfigMap", "name": ""},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # Go's encoding/json escapes these; Python's does not.
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        encoded = encoded.replace(char, escape)
    digest = hashlib.sha256(encoded.encode("utf-8")).hexdigest()
    return digest[:10].translate(str.maketrans("013ae", "ghkmt"))


def rename_references(resources: list[Manifest], config_map: Manifest, original: str) -> None:
    namespace = config_map["metadata"].get("namespace")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                refers = key in ("configMap", "configMapKeyRef", "configMapRef") and isinstance(value, dict)
                if refers and value.get("name") == original:
                    value["name"] = config_map["metadata"]["name"]
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for manifest in resources:
        if manifest is not config_map and manifest["metadata"].get("namespace") == namespace:
            walk(manifest.get("spec"))


# patches


def apply_patch(folder: Path, entry: Manifest, resources: list[Manifest]) -> list[Manifest]:
    if set(entry) - {"path", "patch", "target"}:
        raise Unsupported(f"patch {entry}: only path, patch and target")
    bodies = load_documents(folder / entry["path"]) if "path" in entry else [yaml.safe_load(entry["patch"])]
    target = entry.get("target")
    for body in bodies:
        if isinstance(body, list):
            if target is None:
                raise Unsupported("a JSON 6902 patch needs a target")
            for manifest in selected(resources, target):
                json6902(manifest, body)
            continue
        selector = target or {
            "kind": body["kind"],
            "name": body["metadata"]["name"],
            **({"namespace": body["metadata"]["namespace"]} if "namespace" in body["metadata"] else {}),
        }
        matched = selected(resources, selector)
        if not matched:
            raise Unsupported(f"patch {selector} matches nothing")
        for manifest in matched:
            if body.get("$patch") == "delete":
                resources = [r for r in resources if r is not manifest]
            else:
                strategic_merge(manifest, {k: v for k, v in body.items() if k not in ("apiVersion", "kind")})
    return resources


def selected(resources: list[Manifest], target: Manifest) -> list[Manifest]:
    if set(target) - {"kind", "name", "namespace", "labelSelector"}:
        raise Unsupported(f"target {target}: only kind, name, namespace and labelSelector")
    wanted_labels = dict(
        pair.split("=", 1) for pair in target.get("labelSelector", "").split(",") if pair.strip()
    )
    return [
        r
        for r in resources
        if r["kind"] == target.get("kind", r["kind"])
        and r["metadata"]["name"] == target.get("name", r["metadata"]["name"])
        and r["metadata"].get("namespace") == target.get("namespace", r["metadata"].get("namespace"))
        and wanted_labels.items() <= r["metadata"].get("labels", {}).items()
    ]


def strategic_merge(into: Manifest, patch: Manifest) -> None:
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            strategic_merge(into[key], value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            if key not in MERGE_KEYS:
                raise Unsupported(f"strategic merge of the list {key!r}: add its merge key to MERGE_KEYS")
            merge_key = MERGE_KEYS[key]
            items = into.setdefault(key, [])
            for item in value:
                same = [existing for existing in items if existing.get(merge_key) == item[merge_key]]
                if same:
                    strategic_merge(same[0], item)
                else:
                    items.append(copy.deepcopy(item))
        else:
            into[key] = copy.deepcopy(value)


def json6902(manifest: Manifest, operations: list[Manifest]) -> None:
    for operation in operations:
        *parents, last = [
            token.replace("~1", "/").replace("~0", "~") for token in operation["path"].lstrip("/").split("/")
        ]
        node: Any = manifest
        for token in parents:
            node = node[int(token)] if isinstance(node, list) else node[token]
        op = operation["op"]
        if op == "add" and isinstance(node, list):
            value = copy.deepcopy(operation["value"])
            node.append(value) if last == "-" else node.insert(int(last), value)
        elif op in ("add", "replace") and isinstance(node, dict):
            if op == "replace" and last not in node:
                raise Unsupported(
                    f"replace {operation['path']}: nothing there in {manifest['metadata']['name']}"
                )
            node[last] = copy.deepcopy(operation["value"])
        elif op == "replace" and isinstance(node, list):
            node[int(last)] = copy.deepcopy(operation["value"])
        elif op == "remove":
            del node[int(last) if isinstance(node, list) else last]
        else:
            raise Unsupported(f"JSON patch operation {op} on {operation['path']}")


# images, replicas


def set_image(resources: list[Manifest], spec: Manifest) -> None:
    if set(spec) - {"name", "newName", "newTag", "digest"}:
        raise Unsupported(f"images {spec}: only name, newName, newTag and digest")
    for manifest in resources:
        pod = manifest.get("spec", {}).get("template", {}).get("spec", {})
        for box in pod.get("containers", []) + pod.get("initContainers", []):
            name, tag, digest = split_image(box["image"])
            if name != spec["name"]:
                continue
            name = spec.get("newName", name)
            tag = spec.get("newTag", tag)
            digest = spec.get("digest", digest)
            box["image"] = name + (f"@{digest}" if digest else f":{tag}" if tag else "")


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """name, tag, digest (`registry:5000/a/b:tag@sha256:...`)."""
    image, _, digest = image.partition("@")
    name, colon, tag = image.rpartition(":")
    if not colon or "/" in tag:
        return image, None, digest or None
    return name, tag, digest or None


def set_replicas(resources: list[Manifest], spec: Manifest) -> None:
    for manifest in resources:
        if manifest["kind"] in REPLICATED_KINDS and manifest["metadata"]["name"] == spec["name"]:
            manifest["spec"]["replicas"] = spec["count"]
