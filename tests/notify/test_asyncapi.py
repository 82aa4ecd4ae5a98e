"""notify's AsyncAPI document of the case events: every event type the producers register has its channel,
message and example; every example is a real event (its model parses it, the document's own JSON Schema
accepts it); and the document is valid AsyncAPI 3.0.0, checked against the official JSON Schema from the
npm package @asyncapi/specs (fetched once into pytest's cache, its checksum pinned here)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from referencing import Registry
from referencing.jsonschema import DRAFT7

from services.notify.asyncapi import document, router
from shared.events import Envelope, EventData, event_types, parse
from shared.procedures import Catalogue, load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR

SPECS_PACKAGE = "@asyncapi/specs@6.11.1"
SPECS_TARBALL = "asyncapi-specs-6.11.1.tgz"
SPECS_INTEGRITY = (
    "sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
)
# The bundled variant: every $ref is internal to the file, so no network is needed to resolve them.
SCHEMA_IN_TARBALL = "package/schemas/3.0.0-without-$id.json"
DOCUMENT_URI = "urn:test:asyncapi"


def _integrity(tarball: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()


def _npm_pack(destination: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed: the AsyncAPI 3.0.0 JSON Schema comes from {SPECS_PACKAGE}")
    with tempfile.TemporaryDirectory(dir=destination.parent) as scratch:
        subprocess.run(
            [npm, "pack", SPECS_PACKAGE, "--pack-destination", scratch, "--silent"],
            check=True,
            capture_output=True,
            timeout=180,
        )
        os.replace(Path(scratch) / SPECS_TARBALL, destination)  # whole or absent, for parallel sessions


@pytest.fixture(scope="session")
def asyncapi_schema(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cache = getattr(pytestconfig, "cache", None)  # None with -p no:cacheprovider
    folder = cache.mkdir("asyncapi-specs") if cache is not None else tmp_path_factory.mktemp("specs")
    tarball = folder / SPECS_TARBALL
    if not tarball.exists() or _integrity(tarball) != SPECS_INTEGRITY:
        _npm_pack(tarball)
    assert _integrity(tarball) == SPECS_INTEGRITY, f"{tarball} is not {SPECS_PACKAGE} as pinned"
    with tarfile.open(tarball) as tar:
        member = tar.extractfile(SCHEMA_IN_TARBALL)
        assert member is not None, f"{SPECS_PACKAGE} has no {SCHEMA_IN_TARBALL}"
        schema: dict[str, Any] = json.load(member)
    return schema


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(DEFAULT_PROCEDURES_DIR)


@pytest.fixture(scope="module")
def doc(catalogue: Catalogue) -> dict[str, Any]:
    return document(catalogue, server_url="nats://reader:s3cret@nats.nats.svc:4222")


def _validator(doc: dict[str, Any], pointer: str) -> jsonschema.Draft7Validator:
    """Validates against the schema at `pointer` in the document, its $refs resolved within the document.
    Draft 7: AsyncAPI 3.0's Schema Object is a superset of JSON Schema draft 07."""
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, DRAFT7.create_resource(doc))
    return jsonschema.Draft7Validator({"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=registry)


def _walk(node: object, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}/{index}")


def _resolve(doc: dict[str, Any], ref: str) -> object:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: object = doc
    for token in ref[2:].split("/"):
        assert isinstance(node, dict) and token in node, f"{ref} does not resolve (at {token!r})"
        node = node[token]
    return node


def _message_of(doc: dict[str, Any], event: type[EventData]) -> dict[str, Any]:
    message: dict[str, Any] = doc["components"]["messages"][event.__name__]
    return message


# What the document says


@pytest.mark.parametrize("event", list(event_types().values()), ids=lambda event: event.type)
def test_every_event_type_has_its_channel_and_a_receive_operation(
    doc: dict[str, Any], event: type[EventData]
) -> None:
    channel = doc["channels"][event.name]
    assert channel["address"] == f"case.{{procedure}}.{{case_id}}.{event.name}"
    assert _resolve(doc, channel["messages"][event.__name__]["$ref"]) == _message_of(doc, event)
    assert set(channel["parameters"]) == {"procedure", "case_id"}
    for parameter in channel["parameters"].values():
        _resolve(doc, parameter["$ref"])
    operation = doc["operations"][f"receive-{event.name}"]
    assert operation["action"] == "receive"
    assert operation["channel"] == {"$ref": f"#/channels/{event.name}"}
    assert {"$ref": f"#/channels/{event.name}/messages/{event.__name__}"} in operation["messages"]
    assert operation["bindings"]["nats"]["bindingVersion"] == "0.1.0"


def test_the_procedure_parameter_lists_the_catalogue(doc: dict[str, Any], catalogue: Catalogue) -> None:
    parameters = doc["components"]["parameters"]
    assert parameters["procedure"]["enum"] == catalogue.codes()
    assert parameters["procedure"]["location"] == "$message.payload#/procedure"
    assert parameters["case_id"]["location"] == "$message.payload#/subject"


@pytest.mark.parametrize("event", list(event_types().values()), ids=lambda event: event.type)
def test_each_example_is_a_real_event_its_schemas_accept(doc: dict[str, Any], event: type[EventData]) -> None:
    message = _message_of(doc, event)
    assert message["name"] == event.type
    [example] = message["examples"]
    envelope, data = parse(json.dumps(example["payload"]))  # as every Suivi reader parses a message
    assert type(data) is event
    assert envelope.type == event.type and envelope.source == event.source
    assert envelope.procedure in doc["components"]["parameters"]["procedure"]["enum"]
    assert example["payload"] == Envelope.model_validate(example["payload"]).model_dump(mode="json")
    assert data.model_dump(mode="json") == example["payload"]["data"], "the example holds every field"
    pointer = f"/components/messages/{event.__name__}"
    _validator(doc, f"{pointer}/payload").validate(example["payload"])
    _validator(doc, f"{pointer}/headers").validate(example["headers"])
    assert example["headers"]["Nats-Msg-Id"] == str(envelope.id)
    assert example["headers"]["ce-subject"] == envelope.subject


def test_a_payload_schema_refuses_another_type_or_bad_data(doc: dict[str, Any]) -> None:
    """The schemas are not vacuous: `type` and `data` are the event's own."""
    example = doc["components"]["messages"]["CaseRated"]["examples"][0]["payload"]
    validator = _validator(doc, "/components/messages/CaseRated/payload")
    assert not validator.is_valid({**example, "type": "fr.suivi.case.submitted.v1"})
    assert not validator.is_valid({**example, "data": {**example["data"], "rating": "five"}})
    assert not validator.is_valid({**example, "data": {"rating": 4}})


def test_every_ref_resolves_and_the_schemas_are_draft_07(doc: dict[str, Any]) -> None:
    refs = [(path, node["$ref"]) for path, node in _walk(doc) if isinstance(node.get("$ref"), str)]
    assert len(refs) > 30
    for _path, ref in refs:
        _resolve(doc, ref)
    # pydantic writes JSON Schema 2020-12; what it nests under $defs is hoisted to components.schemas.
    assert not [path for path, node in _walk(doc) if "$defs" in node or "prefixItems" in node]


def test_the_server_names_the_stream_and_no_credentials(doc: dict[str, Any]) -> None:
    server = doc["servers"]["nats"]
    assert server == server | {"host": "nats.nats.svc:4222", "protocol": "nats"}
    assert "s3cret" not in json.dumps(doc)
    stream = server["x-jetstream-stream"]
    assert stream["name"] == "CASES" and stream["subjects"] == ["case.>"] and stream["storage"] == "file"
    assert stream["max_age"] == 0 and stream["duplicate_window_seconds"] == 24 * 3600
    assert server["x-jetstream-consumer"]["ack_policy"] == "explicit"


@pytest.mark.parametrize(
    ("nats_url", "host"),
    [
        ("nats://reader:s3cret@nats.nats.svc:4222", "nats.nats.svc:4222"),
        ("tls://token@nats.ville.example.fr:4222", "nats.ville.example.fr:4222"),
        ("nats://[::1]:24222", "[::1]:24222"),
        ("127.0.0.1:24222", "127.0.0.1:24222"),
    ],
)
def test_the_server_host_comes_from_the_nats_url_without_credentials(
    catalogue: Catalogue, nats_url: str, host: str
) -> None:
    assert document(catalogue, server_url=nats_url)["servers"]["nats"]["host"] == host


# Against the AsyncAPI 3.0.0 JSON Schema


def test_the_document_is_valid_asyncapi_3(doc: dict[str, Any], asyncapi_schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(asyncapi_schema)
    errors = [f"{error.json_path}: {error.message[:300]}" for error in validator.iter_errors(doc)]
    assert not errors, "\n".join(errors[:20])


def test_the_asyncapi_schema_does_catch_a_broken_document(
    doc: dict[str, Any], asyncapi_schema: dict[str, Any]
) -> None:
    broken = copy.deepcopy(doc)
    broken["operations"]["receive-submitted"]["action"] = "subscribe"  # AsyncAPI 2's word, not 3's
    del broken["servers"]["nats"]["protocol"]
    errors = jsonschema.Draft7Validator(asyncapi_schema).iter_errors(broken)
    assert {tuple(error.absolute_path) for error in errors} == {
        ("operations", "receive-submitted"),
        ("servers", "nats"),
    }


# The route


async def test_notify_serves_the_document(catalogue: Catalogue, asyncapi_schema: dict[str, Any]) -> None:
    app = FastAPI()
    app.include_router(router)
    app.state.catalogue = catalogue
    app.state.settings = SimpleNamespace(nats_url="nats://nats.ville.example.fr:4222")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notify") as client:
        answer = await client.get("/v1/asyncapi.json")
        again = await client.get("/v1/asyncapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    served = answer.json()
    assert served == again.json()
    assert served["servers"]["nats"]["host"] == "nats.ville.example.fr:4222"
    assert set(served["components"]["messages"]) == {event.__name__ for event in event_types().values()}
    jsonschema.Draft7Validator(asyncapi_schema).validate(served)
