"""The dashboard's charts: declarative Vega-Lite specifications, drawn as SVG on the server by vl-convert.

A chart is data and a specification, never code that draws: `line` and `bars` build the specification,
`svg` renders it (once per distinct specification: the rendering is cached) and makes the result an
accessible image (`role="img"` named by its `<title>`) that can sit inline in a page, with ids of its own.
Each chart comes in two widths, for a desktop and a phone, so that its text stays readable on both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import vl_convert
from markupsafe import Markup, escape

VEGA_LITE = "6.4"
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
Locale = Literal["fr-FR", "en-GB"]
LOCALES: dict[str, Locale] = {"fr": "fr-FR", "en": "en-GB"}
# The page's colours (tracking.css): a contrast of at least 3:1 on white for every mark (WCAG 1.4.11).
COLOURS = ["#000091", "#b34000", "#18753c", "#6e445a"]
# A second cue besides colour: solid lines for medians, dashed for 90th percentiles.
DASHES = [[1, 0], [6, 4]]
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif"
TEXT = "#161616"
WIDTHS = {"wide": (640, 240), "narrow": (340, 250)}
# At most this many month labels under a chart, so that they never touch; the latest month always has one.
MONTH_LABELS = {"wide": 7, "narrow": 5}
LEGEND_COLUMNS = {"wide": 2, "narrow": 1}
_ARIA = re.compile(r'\s(?:role|aria-roledescription|aria-label)="[^"]*"')
_IDS = re.compile(r'(id="|url\(#|href="#)([^")]+)')


@dataclass(frozen=True)
class Point:
    month: str  # the month's label under the chart, "mars 26"
    series: str
    value: float | None


@dataclass(frozen=True)
class Series:
    label: str
    colour: int = 0  # index in COLOURS
    dashed: bool = False


def _config() -> dict[str, Any]:
    axis = {"labelFontSize": 12, "titleFontSize": 12, "labelColor": TEXT, "titleColor": TEXT}
    return {
        "aria": False,
        "font": FONT,
        "axis": {**axis, "gridColor": "#dddddd", "domainColor": "#666666", "tickColor": "#666666"},
        "legend": {"labelFontSize": 13, "labelColor": TEXT, "orient": "bottom", "title": None},
        "view": {"stroke": None},
    }


def _labelled(months: list[str], size: str) -> list[str]:
    step = -(-len(months) // MONTH_LABELS[size])
    return [m for i, m in enumerate(months) if (len(months) - 1 - i) % step == 0]


def _base(points: Sequence[Point], *, size: str, y_title: str) -> dict[str, Any]:
    width, height = WIDTHS[size]
    months = list(dict.fromkeys(p.month for p in points))
    return {
        "$schema": SCHEMA,
        "width": width,
        "height": height,
        "autosize": {"type": "fit", "contains": "padding"},
        "data": {"values": [{"month": p.month, "series": p.series, "value": p.value} for p in points]},
        "config": _config(),
        "encoding": {
            "x": {
                "field": "month",
                "type": "ordinal",
                "title": None,
                # Every month has its place, even one without a published figure.
                "scale": {"domain": months},
                "axis": {"values": _labelled(months, size), "labelAngle": 0, "grid": False},
            },
            "y": {"field": "value", "type": "quantitative", "title": y_title},
        },
    }


def _legend(series: Sequence[Series], *, size: str) -> dict[str, Any]:
    labels = [s.label for s in series]
    legend = {
        "columns": LEGEND_COLUMNS[size],
        "symbolType": "stroke",
        "symbolStrokeWidth": 3,
        "symbolSize": 500,
        "columnPadding": 32,
        "labelLimit": 320,
    }
    return {
        "color": {
            "field": "series",
            "type": "nominal",
            "sort": labels,
            "scale": {"domain": labels, "range": [COLOURS[s.colour] for s in series]},
            "legend": legend,
        },
        "strokeDash": {
            "field": "series",
            "type": "nominal",
            "sort": labels,
            "scale": {"domain": labels, "range": [DASHES[s.dashed] for s in series]},
            "legend": legend,
        },
    }


def line(points: Sequence[Point], series: Sequence[Series], *, size: str, y_title: str) -> dict[str, Any]:
    """Monthly values as lines, one per series; a missing (suppressed) month is a gap in its line."""
    spec = _base(points, size=size, y_title=y_title)
    spec["mark"] = {"type": "line", "point": {"filled": True, "size": 45}, "strokeWidth": 2.5}
    if len(series) > 1:
        spec["encoding"].update(_legend(series, size=size))
    else:
        spec["mark"]["color"] = COLOURS[series[0].colour]
    return spec


def bars(points: Sequence[Point], *, size: str, y_title: str, percent: bool = False) -> dict[str, Any]:
    """Monthly values of one series as bars; a missing (suppressed) month has none."""
    spec = _base(points, size=size, y_title=y_title)
    spec["mark"] = {"type": "bar", "color": COLOURS[0], "width": {"band": 0.7}}
    if percent:
        spec["encoding"]["y"]["axis"] = {"format": ".0%"}
        spec["encoding"]["y"]["scale"] = {"domain": [0, 1]}
    return spec


def categories(values: Sequence[tuple[str, int]], *, size: str, x_title: str, y_title: str) -> dict[str, Any]:
    """Counts per category (satisfaction ratings), as bars in the order given."""
    width, height = WIDTHS[size]
    order = [label for label, _ in values]
    return {
        "$schema": SCHEMA,
        "width": width,
        "height": height,
        "autosize": {"type": "fit", "contains": "padding"},
        "data": {"values": [{"category": label, "value": n} for label, n in values]},
        "config": _config(),
        "mark": {"type": "bar", "color": COLOURS[0], "width": {"band": 0.7}},
        "encoding": {
            "x": {
                "field": "category",
                "type": "ordinal",
                "sort": order,
                "title": x_title,
                "axis": {"labelAngle": 0},
            },
            "y": {"field": "value", "type": "quantitative", "title": y_title, "axis": {"tickMinStep": 1}},
        },
    }


def svg(spec: dict[str, Any], *, lang: str, chart_id: str, title: str) -> Markup:
    """The chart as an inline, accessible SVG image whose ids start with `chart_id`."""
    drawn = _render(json.dumps(spec, sort_keys=True, ensure_ascii=False), LOCALES.get(lang, "fr-FR"))
    drawn = _IDS.sub(lambda m: f"{m.group(1)}{chart_id}-{m.group(2)}", _ARIA.sub("", drawn))
    opening = drawn.index(">") + 1
    head = drawn[:opening].replace(
        "<svg ",
        f'<svg role="img" aria-labelledby="{chart_id}-title" focusable="false" ',
        1,
    )
    # vl-convert escapes the texts it draws; ours (the title) is escaped here.
    return Markup(f'{head}<title id="{chart_id}-title">{escape(title)}</title>{drawn[opening:]}')  # noqa: S704


@lru_cache(maxsize=256)
def _render(spec: str, locale: Locale) -> str:
    """vl-convert's SVG of a specification: ~50 ms each (the first call starts its engine, ~0.5 s)."""
    return str(
        vl_convert.vegalite_to_svg(
            spec, vl_version=VEGA_LITE, format_locale=locale, time_format_locale=locale
        )
    )
