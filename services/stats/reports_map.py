"""A map of a city's districts as an inline SVG drawn on the server: no tiles, no script.

Longitude and latitude become SVG coordinates by an equirectangular projection scaled by the cosine of
the city's middle latitude (at a city's size, true enough to the eye). Each district is one `<path>`,
filled by its class on a sequential, colour-blind safe scale (ColorBrewer YlGnBu, 4 classes), with a
`<title>` that says its figure; a suppressed district is hatched, a district with no figure is grey, and
every district is labelled with its name and figure, so that colour is never the only way to read it.
The colours are attributes of the drawing (a page's stylesheet is not needed to read it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import polylabel

from shared.places import Districts

# Light to dark; each has a contrast of at least 3:1 with its neighbours' borders drawn in TEXT.
PALETTE = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8")
CLASSES = len(PALETTE)
NO_FIGURE = "#d9d9d9"
HATCH = "#6f6f6f"
TEXT = "#161616"
WIDTH, PADDING = 400.0, 12.0


@dataclass(frozen=True)
class Scale:
    """Classes of equal width `step` from 0: the value `v` is in class ⌊v / step⌋ (the last one holds the
    rest)."""

    step: float

    def class_of(self, value: float) -> int:
        return max(0, min(CLASSES - 1, math.floor(value / self.step + 1e-9)))

    def bounds(self) -> list[tuple[float, float | None]]:
        """Each class's (lowest, below) value; the last has no upper bound."""
        return [(i * self.step, (i + 1) * self.step if i < CLASSES - 1 else None) for i in range(CLASSES)]


def scale_for(values: Sequence[float], *, unit: str) -> Scale:
    """Quarters for a share; for days, round steps (1, 2, 2.5 or 5 × 10ⁿ) that cover the largest value;
    for counts, whole ones (1, 2 or 5 × 10ⁿ)."""
    if unit == "percent":
        return Scale(1 / CLASSES)
    wanted = max(values, default=0.0) / CLASSES
    if wanted <= 0:
        return Scale(1.0)
    power = 10 ** math.floor(math.log10(wanted))
    if unit == "count":
        power = max(power, 1)
    steps = (1, 2, 5, 10) if unit == "count" else (1, 2, 2.5, 5, 10)
    return Scale(next(m * power for m in steps if m * power >= wanted - 1e-9))


@dataclass(frozen=True)
class Area:
    """What the map says of one district."""

    code: str
    name: str
    text: str  # its figure as people read it ("12 jours", "masqué", "–")
    title: str  # the polygon's <title>
    value: float | None = None
    suppressed: bool = False


class Projection:
    """Longitude/latitude to SVG coordinates, the north up, `WIDTH` wide."""

    def __init__(self, districts: Districts) -> None:
        west, south, east, north = districts.bounds()
        self.west, self.north = west, north
        self.kx = math.cos(math.radians((south + north) / 2))
        self.scale = (WIDTH - 2 * PADDING) / max((east - west) * self.kx, 1e-9)
        self.height = (north - south) * self.scale + 2 * PADDING

    def point(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            PADDING + (lon - self.west) * self.kx * self.scale,
            PADDING + (self.north - lat) * self.scale,
        )

    def path(self, geometry: BaseGeometry) -> str:
        """An SVG path of a Polygon or MultiPolygon, holes included (drawn with `fill-rule="evenodd"`)."""
        polygons: list[Polygon] = list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]  # type: ignore[list-item]
        rings = [ring for p in polygons for ring in (p.exterior, *p.interiors)]
        return " ".join(
            "M"
            + " L".join(f"{x:.1f},{y:.1f}" for x, y in (self.point(*c[:2]) for c in ring.coords[:-1]))
            + " Z"
            for ring in rings
        )


def _label_point(geometry: BaseGeometry) -> tuple[float, float]:
    """Where a district's label goes: the point inside it farthest from its edges (of its largest part)."""
    part = max(geometry.geoms, key=lambda g: g.area) if isinstance(geometry, MultiPolygon) else geometry
    assert isinstance(part, Polygon)
    point = polylabel(part, tolerance=1e-5)
    return point.x, point.y


def fill_of(area: Area, scale: Scale, hatch_id: str) -> tuple[str, str]:
    """(class, fill) of a district's path."""
    if area.suppressed:
        return "suppressed", f"url(#{hatch_id})"
    if area.value is None:
        return "no-figure", NO_FIGURE
    index = scale.class_of(area.value)
    return f"c{index}", PALETTE[index]


def svg(
    districts: Districts, areas: dict[str, Area], scale: Scale, *, map_id: str, title: str, description: str
) -> Markup:
    """The map: one path per district, then the labels above every path."""
    projection = Projection(districts)
    hatch = f"{map_id}-hatch"
    paths, labels = [], []
    for district in districts:
        area = areas.get(district.code) or Area(district.code, district.name("fr"), "–", district.code)
        css, fill = fill_of(area, scale, hatch)
        paths.append(
            Markup(
                '<path class="area {}" data-district="{}" fill="{}" stroke="{}" stroke-width="1.5" '
                'fill-rule="evenodd" d="{}"><title>{}</title></path>'
            ).format(css, area.code, fill, TEXT, projection.path(district.geometry), area.title)
        )
        x, y = projection.point(*_label_point(district.geometry))
        labels.append(
            Markup(
                '<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="{c}" stroke="#ffffff" '
                'stroke-width="4" stroke-linejoin="round" paint-order="stroke">'
                '<tspan x="{x:.1f}" dy="-0.2em" font-weight="700" font-size="17">{name}</tspan>'
                '<tspan x="{x:.1f}" dy="1.2em" font-size="16">{text}</tspan></text>'
            ).format(x=x, y=y, c=TEXT, name=area.name, text=area.text)
        )
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="district-map" id="{id}" viewBox="0 0 {w:.0f} {h:.0f}" '
        'role="img" aria-labelledby="{id}-title {id}-desc"><title id="{id}-title">{title}</title>'
        '<desc id="{id}-desc">{desc}</desc><defs><pattern id="{hatch}" patternUnits="userSpaceOnUse" '
        'width="8" height="8" patternTransform="rotate(45)"><rect width="8" height="8" fill="#ffffff"/>'
        '<line x1="0" y1="0" x2="0" y2="8" stroke="{hc}" stroke-width="3"/></pattern></defs>'
        '<g class="areas">{paths}</g><g class="labels" aria-hidden="true">{labels}</g></svg>'
    ).format(
        id=map_id,
        w=WIDTH,
        h=projection.height,
        title=title,
        desc=description,
        hatch=hatch,
        hc=HATCH,
        paths=Markup("").join(paths),
        labels=Markup("").join(labels),
    )


def swatch(kind: str, *, hatch_id: str) -> Markup:
    """A legend's sample of a class (`c0`...), of `suppressed` or of `no-figure`."""
    if kind == "suppressed":
        fill = f"url(#{hatch_id})"
        defs = Markup(
            '<defs><pattern id="{}" patternUnits="userSpaceOnUse" width="8" height="8" '
            'patternTransform="rotate(45)"><rect width="8" height="8" fill="#ffffff"/>'
            '<line x1="0" y1="0" x2="0" y2="8" stroke="{}" stroke-width="3"/></pattern></defs>'
        ).format(hatch_id, HATCH)
    else:
        fill = NO_FIGURE if kind == "no-figure" else PALETTE[int(kind[1:])]
        defs = Markup("")
    return Markup(
        '<svg class="swatch" width="28" height="18" viewBox="0 0 28 18" aria-hidden="true" focusable="false">'
        '{}<rect x="1" y="1" width="26" height="16" fill="{}" stroke="{}" stroke-width="1.5"/></svg>'
    ).format(defs, fill, TEXT)
