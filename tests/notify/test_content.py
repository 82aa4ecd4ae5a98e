"""Every message exists in every language and says what it must; its SMS fits one GSM-7 part where the
language's letters allow it (French, English), else goes as UCS-2 in at most two parts (Arabic), never
with its letters turned into "?" and never with its link cut."""

from __future__ import annotations

import re
import uuid

import pytest

from services.notify.content import GSM7, SMS_MAX, UCS2_MAX, gsm7, languages, render, sms_text
from services.notify.domain import Kind, notice_for
from shared.events import make_envelope
from shared.events.workflow import FixCheckDue, StepChanged
from shared.i18n import direction
from shared.procedures import Procedure, Turn, load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR

CATALOGUE = load_catalogue(DEFAULT_PROCEDURES_DIR)
CODE = "K7QM-2XPD-9RTA-HF3W-Z"
LONG_URL = f"https://demarches.ville-de-saint-remy-de-provence.fr/suivi/{CODE}?lang=fr"
# The languages GSM-7 cannot write: their SMS go as UCS-2. Any other language is expected in GSM-7.
UCS2_LANGUAGES = {"ar"}
ARABIC_LETTER = re.compile(r"[\u0621-\u064a]")


def _steps(procedure: Procedure, kind: Kind) -> list[str]:
    if kind is Kind.RECEIVED:
        return [procedure.first_step.code]
    if kind is Kind.ACTION_NEEDED:
        return [s.code for s in procedure.steps if s.turn is Turn.CITIZEN]
    if kind is Kind.FIX_CHECK:
        return [s.code for s in procedure.steps if s.ask_if_fixed_after_days is not None]
    return [s.code for s in procedure.steps if s.outcome is not None]


CASES = [
    (p, kind, step, lang)
    for p in CATALOGUE.all_latest()
    for kind in Kind
    for step in _steps(p, kind)
    for lang in languages()
]


@pytest.mark.parametrize(
    ("procedure", "kind", "step", "lang"), CASES, ids=[f"{p.code}-{k}-{s}-{lang}" for p, k, s, lang in CASES]
)
def test_every_message_renders_and_its_sms_fits_its_alphabet(
    procedure: Procedure, kind: Kind, step: str, lang: str
) -> None:
    rendered = render(
        kind=kind,
        lang=lang,
        procedure=procedure,
        context={"step": step, "legal_deadline": "2027-02-01", "at": "2026-12-01T10:00:00+01:00"},
        tracking_code=CODE,
        tracking_url=LONG_URL,
        unsubscribe_url="https://notify.example/notifications/stop/abc",
    )
    assert procedure.title.in_(lang) in rendered.subject
    assert CODE in rendered.text or kind is not Kind.RECEIVED
    assert LONG_URL in rendered.text and LONG_URL in rendered.html
    assert procedure.step(step).label.in_(lang) in rendered.text
    assert "https://notify.example/notifications/stop/abc" in rendered.html
    assert f'dir="{direction(lang)}"' in rendered.html
    assert rendered.sms.endswith(" " + LONG_URL)  # the link is never cut
    words = rendered.sms.removesuffix(LONG_URL)
    if lang in UCS2_LANGUAGES:
        assert len(rendered.sms) <= UCS2_MAX, rendered.sms
        assert ARABIC_LETTER.search(words) and "?" not in words, rendered.sms  # still Arabic, not "?"
    else:
        assert len(rendered.sms) <= SMS_MAX, rendered.sms
        assert set(rendered.sms) <= GSM7, rendered.sms


def test_text_outside_gsm7_is_made_plain_rather_than_doubling_the_sms_cost() -> None:
    assert gsm7("Déclaration préalable : fenêtre, façade, cœur « vite »") == (
        'Déclaration préalable : fenetre, facade, coeur " vite "'
    )


def test_arabic_goes_as_ucs2_as_written_and_a_stray_symbol_keeps_french_in_gsm7() -> None:
    arabic = "البلدية: تم تسجيل طلبك «رخصة البناء (permis de construire)»"
    assert sms_text(arabic) == (arabic, UCS2_MAX)
    assert sms_text("Déclaration préalable → façade") == ("Déclaration préalable ? facade", SMS_MAX)


def test_a_long_arabic_sms_is_shortened_before_its_link() -> None:
    procedure = CATALOGUE.get("acte-naissance", 1)
    assert procedure is not None
    rendered = render(
        kind=Kind.DECIDED,
        lang="ar",
        procedure=procedure,
        context={"step": "not-found", "at": "2026-12-01T10:00:00+01:00"},
        tracking_code=CODE,
        tracking_url=LONG_URL,
        unsubscribe_url="https://notify.example/notifications/stop/abc",
    )
    assert len(rendered.sms) <= UCS2_MAX
    # Whole words, then the link whole.
    assert rendered.sms == f"قرار البلدية بشأن ملفك: العقد غير موجود في… {LONG_URL}"


def test_only_changes_that_matter_to_the_citizen_are_notified() -> None:
    procedure = CATALOGUE.get("permis-construire", 1)
    assert procedure is not None

    def step(to: str, **extra: object) -> Kind | None:
        data = StepChanged(
            case_id=uuid.uuid4(),
            version=3,
            action="x",
            from_step="completeness-check",
            to_step=to,
            actor="agent",
            by="claire",
            at="2026-12-01T10:00:00+00:00",  # type: ignore[arg-type]
            clock_paused=False,
            legal_deadline=None,
            **extra,  # type: ignore[arg-type]
        )
        envelope = make_envelope(data, case_id=data.case_id, procedure=procedure.code)
        notice = notice_for(envelope, data, procedure=procedure)
        return notice.kind if notice else None

    assert step("review") is None  # an agent's own step: nothing to tell
    assert step("documents-requested") is Kind.ACTION_NEEDED
    assert step("accepted", outcome="accepted") is Kind.DECIDED
    assert step("tacitly-accepted", outcome="accepted", tacit=True) is Kind.TACIT_DECISION


def test_a_street_report_done_weeks_ago_asks_its_reporter_if_it_is_fixed() -> None:
    report = CATALOGUE.latest("signalement-voirie")
    assert report is not None
    due = FixCheckDue(
        case_id=uuid.uuid4(),
        version=4,
        step="done",
        done_version=3,
        done_at="2026-11-01T10:00:00+00:00",  # type: ignore[arg-type]
        at="2026-11-29T10:00:00+00:00",  # type: ignore[arg-type]
    )
    notice = notice_for(make_envelope(due, case_id=due.case_id, procedure=report.code), due, procedure=report)
    assert notice is not None and notice.kind is Kind.FIX_CHECK and notice.context["step"] == "done"
    rendered = render(
        kind=Kind.FIX_CHECK,
        lang="fr",
        procedure=report,
        context=notice.context,
        tracking_code=CODE,
        tracking_url=LONG_URL,
        unsubscribe_url="https://notify.example/notifications/stop/abc",
    )
    assert "le problème est-il réglé ?" in rendered.subject
    assert "Intervention faite (service fait)" in rendered.text and "Le 1er novembre 2026" in rendered.text
    assert "rouvert" in rendered.text and LONG_URL in rendered.sms
