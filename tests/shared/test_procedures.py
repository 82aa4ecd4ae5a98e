"""Procedure definitions: what ships is coherent, deadlines fall on the right day, and a bad file stops
the service with a message that says which file and which field to fix."""

from __future__ import annotations

import copy
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.i18n import languages
from shared.procedures import (
    Catalogue,
    CatalogueError,
    FieldType,
    LegalDeadline,
    Procedure,
    Role,
    Text,
    load_catalogue,
)

SHIPPED = Path(__file__).resolve().parents[2] / "procedures"


def shipped_catalogue() -> Catalogue:
    return load_catalogue(SHIPPED)


def shipped_procedures() -> list[Procedure]:
    catalogue = shipped_catalogue()
    return [p for versions in catalogue.versions.values() for p in versions.values()]


def _id(procedure: Procedure) -> str:
    return f"{procedure.code}-v{procedure.version}"


def _texts(procedure: Procedure) -> list[tuple[str, Text]]:
    """Every citizen-facing text of a definition, with where it sits."""
    texts: list[tuple[str, Text]] = [("title", procedure.title), ("summary", procedure.summary)]
    for f in procedure.fields:
        texts.append((f"field {f.name} label", f.label))
        texts += [(f"field {f.name} help", f.help)] if f.help else []
        texts += [(f"field {f.name} pattern_hint", f.pattern_hint)] if f.pattern_hint else []
        texts += [(f"field {f.name} choice {c.value}", c.label) for c in f.choices]
    for s in procedure.steps:
        texts += [(f"step {s.code} label", s.label), (f"step {s.code} explanation", s.explanation)]
    return texts


# --- What ships ---------------------------------------------------------------------------------------


def test_the_shipped_catalogue_loads_with_every_procedure_offered_to_citizens() -> None:
    catalogue = shipped_catalogue()
    assert {
        "permis-construire",
        "declaration-prealable",
        "acte-naissance",
        "carte-stationnement-resident",
        "signalement-voirie",
    } <= set(catalogue.codes())
    assert all(p.version >= 1 for p in catalogue.all_latest())


@pytest.mark.parametrize("procedure", shipped_procedures(), ids=_id)
class TestEveryShippedDefinition:
    def test_speaks_french_and_english_everywhere_a_citizen_reads(self, procedure: Procedure) -> None:
        assert {"fr", "en"} <= set(languages())
        for where, text in _texts(procedure):
            for lang in languages():
                written = (text.model_extra or {}).get(lang)
                assert isinstance(written, str), f"{procedure.code}: {where} has no {lang} text"
                assert written.strip(), f"{procedure.code}: {where} has an empty {lang} text"

    def test_no_text_was_cut_by_a_comma_in_a_one_line_label(self, procedure: Procedure) -> None:
        # `label: {fr: Son père, sa mère, en: ...}` parses as keys "fr", "sa mère" and "en": the French label
        # becomes "Son père". Every text must hold exactly the supported languages and nothing else.
        for where, text in _texts(procedure):
            assert set(text.model_extra or {}) == set(languages()), f"{procedure.code}: {where} was cut"

    def test_every_step_has_a_label_and_an_explanation_in_french_and_english(
        self, procedure: Procedure
    ) -> None:
        for step in procedure.steps:
            for lang in ("fr", "en"):
                assert step.label.in_(lang) == (step.label.model_extra or {})[lang]
                assert step.explanation.in_(lang) == (step.explanation.model_extra or {})[lang]

    def test_transitions_only_name_steps_that_exist(self, procedure: Procedure) -> None:
        codes = {s.code for s in procedure.steps}
        for t in procedure.transitions:
            assert t.from_ in codes, f"{t.action} starts from unknown step {t.from_}"
            assert t.to in codes, f"{t.action} leads to unknown step {t.to}"
            assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", t.action)
            assert t.roles, f"{t.action}: nobody may take it"

    def test_a_case_starts_open_and_can_end(self, procedure: Procedure) -> None:
        assert procedure.first_step.outcome is None
        assert any(s.outcome is not None for s in procedure.steps)

    def test_no_case_gets_stuck_and_a_finished_case_stays_finished(self, procedure: Procedure) -> None:
        leaving = {t.from_ for t in procedure.transitions}
        for step in procedure.steps:
            if step.outcome is None:
                assert step.code in leaving, f"open step {step.code} has no way out"
            elif step.ask_if_fixed_after_days is not None:
                # A street report's "done": only its reporter's "not fixed" reopens it.
                [out] = [t for t in procedure.transitions if t.from_ == step.code]
                assert out.roles == (Role.CITIZEN,) and procedure.step(out.to).outcome is None
            else:
                assert step.code not in leaving, f"final step {step.code} has a way out"

    def test_nothing_that_could_identify_someone_is_published(self, procedure: Procedure) -> None:
        for f in procedure.fields:
            if f.public is True:
                assert f.type in (FieldType.CHOICE, FieldType.NUMBER, FieldType.INTEGER, FieldType.BOOLEAN), (
                    f"{f.name} is public but free-form ({f.type})"
                )
            elif f.public:
                assert f.type is FieldType.LOCATION and f.public == "district" and f.choices

    def test_every_text_field_is_bounded_and_every_format_is_explained(self, procedure: Procedure) -> None:
        for f in procedure.fields:
            if f.type in (FieldType.STRING, FieldType.TEXT):
                assert f.max_length is not None
            if f.pattern:
                re.compile(f.pattern)
                assert f.pattern_hint is not None


def test_the_resident_card_accepts_a_french_plate_and_says_how_to_write_it() -> None:
    card = shipped_catalogue().latest("carte-stationnement-resident")
    assert card is not None
    plate = card.field("vehicle_registration")
    assert plate is not None
    assert plate.pattern is not None
    assert plate.pattern_hint is not None
    assert re.fullmatch(plate.pattern, "AB-123-CD")
    for wrong in ("ab-123-cd", "AB123CD", "AB-12-CD", "IO-123-UA"):
        assert not re.fullmatch(plate.pattern, wrong), wrong


def test_a_prior_declaration_is_deemed_accepted_after_one_month_of_silence() -> None:
    declaration = shipped_catalogue().latest("declaration-prealable")
    assert declaration is not None
    assert declaration.legal_deadline is not None
    assert declaration.legal_deadline.silence == "acceptance"
    assert declaration.legal_deadline.due(date(2026, 3, 15)) == date(2026, 4, 15)


def test_a_birth_certificate_request_carries_no_legal_deadline() -> None:
    birth = shipped_catalogue().latest("acte-naissance")
    assert birth is not None
    assert birth.legal_deadline is None
    born = birth.field("birth_date")
    assert born is not None
    assert born.type is FieldType.DATE
    assert born.not_in_future


def test_a_report_is_located_by_an_address_or_a_point_on_the_map() -> None:
    report = shipped_catalogue().latest("signalement-voirie")
    assert report is not None
    where = report.field("location")
    assert where is not None
    assert where.type is FieldType.LOCATION
    assert where.required


# --- Legal deadlines ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deadline", "start", "due"),
    [
        pytest.param(LegalDeadline(months=2), date(2026, 12, 31), date(2027, 2, 28), id="over-new-year"),
        pytest.param(LegalDeadline(months=1), date(2026, 1, 31), date(2026, 2, 28), id="short-february"),
        pytest.param(LegalDeadline(months=1), date(2028, 1, 31), date(2028, 2, 29), id="leap-february"),
        pytest.param(LegalDeadline(months=12), date(2028, 2, 29), date(2029, 2, 28), id="from-leap-day"),
        pytest.param(LegalDeadline(months=1), date(2026, 3, 15), date(2026, 4, 15), id="same-day-number"),
        pytest.param(LegalDeadline(days=15), date(2026, 12, 20), date(2027, 1, 4), id="days-over-new-year"),
        pytest.param(LegalDeadline(days=1), date(2028, 2, 28), date(2028, 2, 29), id="days-into-leap-day"),
        pytest.param(
            LegalDeadline(months=1, days=10), date(2026, 1, 31), date(2026, 3, 10), id="months-then-days"
        ),
        pytest.param(LegalDeadline(months=24), date(2026, 5, 31), date(2028, 5, 31), id="two-years"),
    ],
)
def test_a_deadline_counts_calendar_months_then_days(deadline: LegalDeadline, start: date, due: date) -> None:
    assert deadline.due(start) == due


# --- A bad file stops the service and says what to fix ------------------------------------------------


def _valid(code: str = "demande-test", version: int = 1) -> dict[str, Any]:
    return {
        "code": code,
        "version": version,
        "service": "test",
        "title": {"fr": "Demande de test", "en": "Test request"},
        "summary": {"fr": "Pour les tests.", "en": "For the tests."},
        "legal_deadline": {"months": 1, "silence": "nothing"},
        "fields": [
            {
                "name": "district",
                "type": "choice",
                "public": True,
                "label": {"fr": "Quartier", "en": "District"},
                "choices": [{"value": "centre", "label": {"fr": "Centre", "en": "Centre"}}],
            },
            {
                "name": "message",
                "type": "text",
                "max_length": 500,
                "label": {"fr": "Message", "en": "Message"},
            },
        ],
        "steps": [
            {
                "code": "received",
                "label": {"fr": "Reçue", "en": "Received"},
                "explanation": {"fr": "Enregistrée.", "en": "Registered."},
            },
            {
                "code": "done",
                "outcome": "accepted",
                "turn": "none",
                "label": {"fr": "Terminée", "en": "Done"},
                "explanation": {"fr": "C'est fait.", "en": "It is done."},
            },
        ],
        "transitions": [{"action": "finish", "from": "received", "to": "done"}],
    }


def _in_every_language(node: Any) -> Any:
    """The test definition's texts, written in French and English, in the catalogue's other languages too
    (in English: these tests are about the definition's shape, not its words)."""
    if isinstance(node, dict):
        filled = {key: _in_every_language(value) for key, value in node.items()}
        if {"fr", "en"} <= filled.keys():
            filled |= {lang: filled["en"] for lang in languages() if lang not in filled}
        return filled
    if isinstance(node, list):
        return [_in_every_language(value) for value in node]
    return node


def _write(root: Path, definition: dict[str, Any], filename: str | None = None) -> Path:
    path: Path = root / str(definition["code"]) / (filename or f"v{definition['version']}.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(_in_every_language(definition), allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def _refused(directory: Path) -> str:
    with pytest.raises(CatalogueError) as refused:
        load_catalogue(directory)
    return str(refused.value)


def test_the_valid_test_definition_loads(tmp_path: Path) -> None:
    _write(tmp_path, _valid())
    assert load_catalogue(tmp_path).codes() == ["demande-test"]


def test_a_step_without_its_english_label_is_refused(tmp_path: Path) -> None:
    definition = _valid()
    del definition["steps"][1]["label"]["en"]
    path = _write(tmp_path, definition)
    message = _refused(tmp_path)
    assert str(path) in message
    assert "steps.1.label" in message
    assert "en" in message.split("steps.1.label", 1)[1]


def test_a_transition_to_a_step_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    definition = _valid()
    definition["transitions"].append({"action": "wander-off", "from": "received", "to": "nowhere"})
    path = _write(tmp_path, definition)
    message = _refused(tmp_path)
    assert str(path) in message
    assert "wander-off" in message
    assert "nowhere" in message


def test_two_fields_with_the_same_name_are_refused(tmp_path: Path) -> None:
    definition = _valid()
    definition["fields"].append(copy.deepcopy(definition["fields"][1]))
    path = _write(tmp_path, definition)
    message = _refused(tmp_path)
    assert str(path) in message
    assert "fields" in message
    assert "message" in message


def test_a_file_whose_name_and_content_disagree_on_the_version_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _valid(version=1), filename="v2.yaml")
    message = _refused(tmp_path)
    assert str(path) in message
    assert "demande-test/v1.yaml" in message


def test_a_file_filed_under_another_code_is_refused(tmp_path: Path) -> None:
    definition = _valid(code="demande-test")
    path = tmp_path / "autre-demande" / "v1.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(_in_every_language(definition)), encoding="utf-8")
    message = _refused(tmp_path)
    assert str(path) in message
    assert "demande-test" in message


def test_a_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "demande-test" / "v1.yaml"
    path.parent.mkdir()
    path.write_text("code: demande-test\nsteps: [received, {oops\n", encoding="utf-8")
    message = _refused(tmp_path)
    assert str(path) in message
    assert "not valid YAML" in message


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "demande-test" / "v1.yaml"
    path.parent.mkdir()
    path.write_text("", encoding="utf-8")
    assert str(path) in _refused(tmp_path)


def test_a_folder_without_definitions_is_refused(tmp_path: Path) -> None:
    (tmp_path / "demande-test").mkdir()
    (tmp_path / "demande-test" / "notes.txt").write_text("pas une définition", encoding="utf-8")
    message = _refused(tmp_path)
    assert str(tmp_path) in message
    assert "no procedure definitions" in message


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    message = _refused(missing)
    assert str(missing) in message
    assert "PROCEDURES_DIR" in message


def test_a_pattern_without_a_hint_people_can_read_is_refused(tmp_path: Path) -> None:
    definition = _valid()
    definition["fields"].append(
        {
            "name": "plate",
            "type": "string",
            "max_length": 9,
            "pattern": "^[A-Z]{2}-[0-9]{3}-[A-Z]{2}$",
            "label": {"fr": "Immatriculation", "en": "Registration"},
        }
    )
    path = _write(tmp_path, definition)
    message = _refused(tmp_path)
    assert str(path) in message
    assert "fields.2" in message
    assert "plate" in message
    assert "pattern_hint" in message


def test_a_text_field_without_a_maximum_length_is_refused(tmp_path: Path) -> None:
    definition = _valid()
    del definition["fields"][1]["max_length"]
    path = _write(tmp_path, definition)
    message = _refused(tmp_path)
    assert str(path) in message
    assert "fields.1" in message
    assert "max_length" in message


def test_one_bad_file_stops_the_whole_catalogue(tmp_path: Path) -> None:
    _write(tmp_path, _valid(code="bonne-demande"))
    bad = _valid(code="mauvaise-demande")
    del bad["title"]["en"]
    path = _write(tmp_path, bad)
    message = _refused(tmp_path)
    assert str(path) in message
    assert "title" in message


# Known gaps in shared/procedures.py: each test says what should happen and fails until it does.


def test_a_pattern_that_is_not_a_regular_expression_is_refused(tmp_path: Path) -> None:
    definition = _valid()
    definition["fields"].append(
        {
            "name": "plate",
            "type": "string",
            "max_length": 9,
            "pattern": "^[A-Z",
            "pattern_hint": {"fr": "par exemple AB-123-CD", "en": "for example AB-123-CD"},
            "label": {"fr": "Immatriculation", "en": "Registration"},
        }
    )
    path = _write(tmp_path, definition)
    message = _refused(tmp_path)
    assert str(path) in message
    assert "plate" in message


def test_a_label_cut_by_a_comma_is_refused(tmp_path: Path) -> None:
    definition = _valid()
    # What `label: {fr: Reçue, enregistrée, en: Received, registered}` reads as.
    definition["steps"][0]["label"] = yaml.safe_load("{fr: Reçue, enregistrée, en: Received, registered}")
    assert definition["steps"][0]["label"]["fr"] == "Reçue"
    path = _write(tmp_path, definition)
    message = _refused(tmp_path)
    assert str(path) in message
    assert "steps.0.label" in message


def test_a_file_not_in_utf8_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "demande-test" / "v1.yaml"
    path.parent.mkdir()
    path.write_bytes(
        yaml.safe_dump(_valid(), allow_unicode=True).encode("utf-8") + "# café\n".encode("latin-1")
    )
    assert str(path) in _refused(tmp_path)


# --- Versions -----------------------------------------------------------------------------------------


def test_the_catalogue_keeps_every_version_and_offers_the_newest(tmp_path: Path) -> None:
    first = _valid(version=1)
    second = _valid(version=2)
    second["title"] = {"fr": "Demande de test, nouvelle formule", "en": "Test request, new form"}
    third = _valid(version=10)
    for definition in (first, second, third):
        _write(tmp_path, definition)
    catalogue = load_catalogue(tmp_path)

    latest = catalogue.latest("demande-test")
    assert latest is not None
    assert latest.version == 10
    assert [p.version for p in catalogue.all_latest()] == [10]

    old = catalogue.get("demande-test", 1)
    assert old is not None
    assert old.title.in_("fr") == "Demande de test"
    middle = catalogue.get("demande-test", 2)
    assert middle is not None
    assert middle.title.in_("en") == "Test request, new form"

    assert catalogue.get("demande-test", 3) is None
    assert catalogue.latest("inconnue") is None
    assert catalogue.get("inconnue", 1) is None


# --- Public fields identify nobody -----------------------------------------------------------------------


def _field(name: str, type_: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "label": {"fr": "Champ", "en": "Field"}, **options}


_DISTRICTS = [{"value": "nord", "label": {"fr": "Nord", "en": "North"}}]


@pytest.mark.parametrize(
    "field",
    [
        _field("comment", "text", max_length=500, public=True),
        _field("surname", "string", max_length=100, public=True),
        _field("contact", "email", public=True),
        _field("mobile", "phone", public=True),
        _field("plans", "url", public=True),
        _field("born_on", "date", public=True),
        _field("place", "location", public=True),
        _field("place", "location", public=True, choices=_DISTRICTS),
    ],
    ids=lambda f: f"{f['type']}-{f['name']}",
)
def test_a_public_field_that_could_identify_someone_is_refused(tmp_path: Path, field: dict[str, Any]) -> None:
    definition = _valid()
    definition["fields"].append(field)
    path = _write(tmp_path, definition)
    message = _refused(tmp_path)
    assert str(path) in message
    assert "fields.2" in message
    assert f"field {field['name']}" in message
    assert "cannot be public" in message
    if field["type"] == "location":
        assert "public: district" in message, "says how a place can be published"


def test_a_location_can_be_public_as_its_district_only(tmp_path: Path) -> None:
    definition = _valid()
    definition["fields"].append(_field("place", "location", public="district", choices=_DISTRICTS))
    _write(tmp_path, definition)
    procedure = load_catalogue(tmp_path).latest("demande-test")
    assert procedure is not None
    place = procedure.field("place")
    assert place is not None
    assert place.publishes_district
    assert [c.value for c in place.choices] == ["nord"]


@pytest.mark.parametrize(
    ("field", "words"),
    [
        (_field("place", "location", public="district"), "needs the districts"),
        (_field("size", "integer", public="district"), "only goes with type location"),
        (_field("place", "location", public="street"), "public"),
    ],
    ids=["no-districts", "not-a-location", "another-coarsening"],
)
def test_a_district_publication_must_make_sense(tmp_path: Path, field: dict[str, Any], words: str) -> None:
    definition = _valid()
    definition["fields"].append(field)
    path = _write(tmp_path, definition)
    message = _refused(tmp_path)
    assert str(path) in message
    assert "fields.2" in message
    assert words in message
