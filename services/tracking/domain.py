"""tracking's rules: what a case looks like to the person holding its tracking code."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.tracking.schemas import (
    Clocks,
    HistoryEntry,
    ProcedureRef,
    Status,
    StepOverview,
    TrackingView,
)
from shared import tracking_code
from shared.i18n import translate
from shared.procedures import CITY_TIMEZONE, Catalogue, Procedure


def _overview(procedure: Procedure, current: str, visited: set[str], lang: str) -> list[StepOverview]:
    """Steps already passed, the current one, then the ordinary path ahead (final steps only if reached)."""
    out = []
    current_is_final = procedure.step(current).outcome is not None
    for step in procedure.steps:
        if step.code == current:
            state = "current"
        elif step.code in visited:
            state = "done"
        elif step.outcome is not None or step.turn == "citizen" or current_is_final:
            continue  # alternative endings and detours are shown only once they happen
        else:
            state = "upcoming"
        out.append(
            StepOverview(
                step=step.code,
                label=step.label.in_(lang),
                explanation=step.explanation.in_(lang),
                expected_days=step.expected_days,
                state=state,
            )
        )
    return out


def build_view(
    *,
    code: str,
    case: dict[str, Any],
    history: list[dict[str, Any]],
    catalogue: Catalogue,
    lang: str,
    today: date,
) -> TrackingView:
    procedure = catalogue.get(case["procedure"], case["procedure_version"])
    if procedure is None:
        raise LookupError(
            f"procedure {case['procedure']} v{case['procedure_version']} is not in the catalogue"
        )
    step = procedure.step(case["step"])
    deadline = case["legal_deadline"]
    submitted: datetime = case["submitted_at"]
    return TrackingView(
        tracking_code=tracking_code.display(tracking_code.normalize(code)),
        language=lang,
        procedure=ProcedureRef(
            code=procedure.code, version=procedure.version, title=procedure.title.in_(lang)
        ),
        submitted_at=submitted,
        status=Status(
            step=step.code,
            label=step.label.in_(lang),
            explanation=step.explanation.in_(lang),
            since=case["step_since"],
            turn=step.turn,
            turn_label=translate(f"turn.{step.turn}", lang),
            final=step.outcome is not None,
            outcome=step.outcome,
        ),
        history=[
            HistoryEntry(step=h["step"], label=procedure.step(h["step"]).label.in_(lang), at=h["occurred_at"])
            for h in history
        ],
        steps=_overview(procedure, step.code, {h["step"] for h in history}, lang),
        clocks=Clocks(
            elapsed_days=(today - submitted.astimezone(CITY_TIMEZONE).date()).days,
            legal_deadline=deadline,
            days_left=(deadline - today).days if deadline and step.outcome is None else None,
        ),
        version=case["version"],
    )
