"""A 311 app reads the city's services: one per category of the street report, named in its user's
language, each with a definition; unknown services and formats are answered in Open311's own shape."""

from __future__ import annotations

import httpx
import yaml

from services.intake.open311_fields import Door, attribute_of, value_of
from shared.open311 import Open311Services
from shared.procedures import load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR
from tests.open311.conftest import errors_of, validate, xml_of


async def test_every_category_of_the_street_report_is_a_service_named_in_the_language_asked(
    intake: httpx.AsyncClient,
) -> None:
    french = (await intake.get("/open311/v2/services.json")).json()
    validate("services", french)
    services = {s["service_code"]: s for s in french}
    assert "eclairage" in services and "bruit-nocturne" in services and len(services) == 14
    lighting = services["eclairage"]
    assert lighting["service_name"] == "Éclairage public"
    assert (lighting["type"], lighting["group"], lighting["metadata"]) == ("realtime", "voirie", False)
    assert services["bruit-nocturne"]["group"] == "police-municipale"
    assert "eclairage" in lighting["keywords"] and "130 m" in lighting["description"]
    english = (await intake.get("/open311/v2/services.json", headers={"Accept-Language": "en"})).json()
    assert {s["service_code"]: s["service_name"] for s in english}["eclairage"] == "Street lighting"
    arabic = (await intake.get("/open311/v2/services.json?lang=ar")).json()
    assert {s["service_code"]: s["service_name"] for s in arabic}["eclairage"] == "الإنارة العمومية"
    # Procedures without a public place (a building permit) are no Open311 service.
    assert not any("permis" in s["service_code"] for s in french)


async def test_the_xml_list_says_the_same_as_the_json_one(intake: httpx.AsyncClient) -> None:
    root = xml_of(await intake.get("/open311/v2/services.xml?lang=en"))
    assert root.tag == "services"
    from_xml = {s.findtext("service_code"): s.findtext("service_name") for s in root.iter("service")}
    from_json = {
        s["service_code"]: s["service_name"]
        for s in (await intake.get("/open311/v2/services.json?lang=en")).json()
    }
    assert from_xml == from_json
    assert {s.findtext("metadata") for s in root.iter("service")} == {"false"}


async def test_a_service_definition_lists_the_fields_beyond_the_specs_own(intake: httpx.AsyncClient) -> None:
    # The street report's fields are all the spec's own (category, place, photo link, description).
    definition = (await intake.get("/open311/v2/services/eclairage.json")).json()
    validate("service-definition", definition)
    assert definition == {"service_code": "eclairage", "attributes": []}
    root = xml_of(await intake.get("/open311/v2/services/eclairage.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == "eclairage"


async def test_an_unknown_service_is_a_404_in_open311s_shape(intake: httpx.AsyncClient) -> None:
    [description] = errors_of(await intake.get("/open311/v2/services/nope.json?lang=en"), 404)
    assert description == 'There is no service "nope": the codes are those of services.json.'
    error = xml_of(await intake.get("/open311/v2/services/nope.xml"), 404).find("error")
    assert error is not None and error.findtext("code") == "404"
    assert "nope" in (error.findtext("description") or "")


async def test_unknown_formats_and_resources_are_answered_in_open311s_shape(
    intake: httpx.AsyncClient,
) -> None:
    [unknown_format] = errors_of(await intake.get("/open311/v2/services.csv?lang=en"), 400)
    assert unknown_format == 'Unknown format "csv": ask for .json or .xml.'
    [unknown] = errors_of(await intake.get("/open311/v2/tokens/abc.json"), 404)
    assert "services.json" in unknown
    # Parameters FastAPI would refuse with its own 422 are the spec's 400.
    errors_of(await intake.get("/open311/v2/services/" + "x" * 300 + ".json"), 400)


def _with_procedure(tmp_path, name: str, **changes) -> None:  # type: ignore[no-untyped-def]
    """A copy of the street report under another code, in `tmp_path`'s catalogue."""
    source = yaml.safe_load((DEFAULT_PROCEDURES_DIR / "signalement-voirie" / "v2.yaml").read_text())
    folder = tmp_path / name
    folder.mkdir()
    (folder / "v1.yaml").write_text(yaml.safe_dump({**source, "code": name, "version": 1, **changes}))
    geojson = DEFAULT_PROCEDURES_DIR / "signalement-voirie" / "districts.geojson"
    (folder / "districts.geojson").write_bytes(geojson.read_bytes())


def test_a_category_two_procedures_share_is_namespaced_with_the_procedure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _with_procedure(tmp_path, "signalement-parcs")
    _with_procedure(tmp_path, "signalement-ecoles")
    services = Open311Services(load_catalogue(tmp_path))
    codes = {s.code for s in services.offered()}
    assert "signalement-parcs.eclairage" in codes and "signalement-ecoles.eclairage" in codes
    assert "eclairage" not in codes
    lighting = services.get("signalement-parcs.eclairage")
    assert (
        lighting is not None and lighting.procedure == "signalement-parcs" and lighting.value == "eclairage"
    )
    assert services.of_case("signalement-parcs", {"category": "eclairage"}) == lighting


def test_older_versions_categories_are_known_but_not_offered() -> None:
    services = Open311Services(load_catalogue(DEFAULT_PROCEDURES_DIR))
    # v1 of the street report publishes no district: it is no Open311 service at all.
    assert all(s.offered for s in services.offered())
    assert services.get("harcelement") is not None


def test_other_fields_become_attributes_of_the_spec_s_datatypes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    extra = [
        {
            "name": "danger",
            "type": "boolean",
            "required": False,
            "label": {"fr": "Danger", "en": "Danger", "ar": "خطر"},
        },
        {"name": "count", "type": "integer", "label": {"fr": "Nombre", "en": "How many", "ar": "العدد"}},
        {"name": "seen_on", "type": "date", "label": {"fr": "Vu le", "en": "Seen on", "ar": "شوهد في"}},
        {
            "name": "note",
            "type": "string",
            "max_length": 50,
            "label": {"fr": "Note", "en": "Note", "ar": "ملاحظة"},
        },
    ]
    source = yaml.safe_load((DEFAULT_PROCEDURES_DIR / "signalement-voirie" / "v2.yaml").read_text())
    _with_procedure(tmp_path, "signalement-test", fields=[*source["fields"], *extra])
    procedure = load_catalogue(tmp_path).latest("signalement-test")
    assert procedure is not None
    door = Door.of(procedure)
    assert [f.name for f in door.attributes] == ["danger", "count", "seen_on", "note"]
    attributes = [attribute_of(f, i, "en") for i, f in enumerate(door.attributes, start=1)]
    validate("service-definition", {"service_code": "eclairage", "attributes": attributes})
    assert [(a["code"], a["datatype"], a["required"], a["order"]) for a in attributes] == [
        ("danger", "singlevaluelist", False, 1),
        ("count", "number", True, 2),
        ("seen_on", "datetime", True, 3),
        ("note", "string", True, 4),
    ]
    assert attributes[0]["values"] == [{"key": "true", "name": "Yes"}, {"key": "false", "name": "No"}]
    assert (value_of(door.attributes[0], "true"), value_of(door.attributes[1], "3")) == (True, 3)
    assert value_of(door.attributes[1], "three") == "three"  # the procedure's check says what is wrong
