"""stats' open data: CSV files and a Frictionless Data Package that validate, with the JSON API's numbers."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from frictionless import validate
from nats.js import JetStreamContext

from services.stats.opendata import package
from tests.conftest import Env, stats_settings
from tests.stats.test_figures import PROCEDURE, js, march_history, months_figures, publish, settled

__all__ = ["js"]
OPEN_DATA = "/v1/stats/open-data"
DECISIONS = {
    "accepted": "acceptes",
    "rejected": "refuses",
    "tacit-acceptance": "acceptes_tacitement",
    "tacit-rejection": "refuses_tacitement",
    "closed": "clos_sans_decision",
}
CHANNELS = {"web": "en_ligne", "counter": "guichet", "phone": "telephone", "mail": "courrier"}


async def download(stats: httpx.AsyncClient, folder: Path) -> dict[str, list[dict[str, str]]]:
    """Every file the index lists, written to `folder` as a reader would save them; the CSVs, read."""
    index = (await stats.get(f"{OPEN_DATA}/")).json()
    described = await stats.get(index["datapackage"])
    assert described.status_code == 200 and described.headers["content-type"] == "application/json"
    (folder / "datapackage.json").write_bytes(described.content)
    tables = {}
    for entry in index["files"]:
        answer = await stats.get(entry["url"])
        assert answer.status_code == 200 and answer.headers["content-type"] == "text/csv; charset=utf-8"
        (folder / entry["url"].rsplit("/", 1)[1]).write_bytes(answer.content)
        tables[entry["name"]] = list(csv.DictReader(io.StringIO(answer.text)))
        assert len(tables[entry["name"]]) == entry["rows"]
    return tables


def one(rows: list[dict[str, str]], **where: str) -> dict[str, str]:
    found = [r for r in rows if all(r[k] == v for k, v in where.items())]
    assert len(found) == 1, (where, found)
    return found[0]


def number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {
            k: v for key, item in value.items() for k, v in leaves(item, f"{path}.{key}".lstrip(".")).items()
        }
    return {path: value}


def csv_cell(tables: dict[str, list[dict[str, str]]], where: dict[str, str], path: str) -> str:
    """Where the CSV files keep the JSON figure at `path` (`time_to_decision.elapsed.p50_days`...)."""
    parts = path.split(".")
    distribution = {"n": "n", "p50_days": "p50_jours", "p90_days": "p90_jours", "mean_days": "moyenne_jours"}
    share = {"n": "n", "share": "part"}
    if parts[0] == "steps":
        row = one(tables["etapes"], **where, etape=parts[1])
        return row[f"duree_{distribution[parts[2]]}"]
    if parts[0] == "satisfaction":
        row = one(tables["satisfaction"], **where)
        name = {"n": "avis_n", "mean": "note_moyenne"}.get(parts[1]) or f"note_{parts[-1]}"
        return row[name]
    row_of, column = {
        "time_to_decision": (
            "delais",
            lambda: f"delai_{'ecoule' if parts[1] == 'elapsed' else 'legal'}_" + distribution[parts[2]],
        ),
        "within_legal_deadline": ("delais", lambda: f"dans_delai_legal_{share[parts[1]]}"),
        "submitted": ("volumes", lambda: "deposes"),
        "channels": ("volumes", lambda: f"deposes_{CHANNELS[parts[1]]}"),
        "digital_share": ("volumes", lambda: f"part_en_ligne_{share[parts[1]]}"),
        "decided": ("volumes", lambda: f"decides_{DECISIONS[parts[1]]}"),
        "backlog": (
            "volumes",
            lambda: (
                "ouverts_fin_de_mois" if parts[1] == "open" else f"anciennete_stock_{distribution[parts[2]]}"
            ),
        ),
    }[parts[0]]
    return one(tables[row_of], **where)[column()]


async def test_the_open_data_validates_and_holds_every_figure_of_the_json(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env, tmp_path: Path
) -> None:
    events, _, _ = march_history()
    await settled(env, (await publish(js, events))[-1])

    tables = await download(stats, tmp_path)
    report = validate(tmp_path / "datapackage.json")
    assert report.valid, report.flatten(["title", "rowNumber", "fieldName", "note"])

    series = months_figures(
        (
            await stats.get(f"/v1/stats/procedures/{PROCEDURE}", params={"from": "2026-03", "to": "2026-04"})
        ).json()
    )
    checked = 0
    for month, figures in series.items():
        where = {"procedure": PROCEDURE, "mois": month, "quartier": ""}
        for path, value in leaves(figures).items():
            if path == "period" or path.endswith("suppressed"):
                continue
            if path == "backlog.age.mean_days":  # never computed: stats keeps no sum of ages
                assert value is None
                continue
            cell = csv_cell(tables, where, path)
            assert number(cell) == value, (month, path, cell, value)
            checked += value is not None
    assert checked > 60
    march = one(tables["delais"], procedure=PROCEDURE, mois="2026-03", quartier="")
    assert (
        number(march["delai_ecoule_p50_jours"])
        == series["2026-03"]["time_to_decision"]["elapsed"]["p50_days"]
    )


async def test_a_small_district_is_an_empty_cell_with_its_flag_never_the_number(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env, tmp_path: Path
) -> None:
    events, _, _ = march_history()
    await settled(env, (await publish(js, events))[-1])
    tables = await download(stats, tmp_path)

    east = one(tables["volumes"], procedure=PROCEDURE, mois="2026-03", quartier="est")
    assert east["deposes"] == "" and east["deposes_masque"] == "true"  # 3 cases, fewer than 5
    east_times = one(tables["delais"], procedure=PROCEDURE, mois="2026-03", quartier="est")
    assert east_times["delai_ecoule_masque"] == "true"
    assert [
        east_times[c] for c in ("delai_ecoule_n", "delai_ecoule_p50_jours", "delai_ecoule_p90_jours")
    ] == [
        "",
        "",
        "",
    ]
    centre = one(tables["volumes"], procedure=PROCEDURE, mois="2026-03", quartier="centre")
    assert centre["deposes"] == "17" and centre["deposes_masque"] == "false"
    # Every month from the first one to the month under way, for every district and all together.
    months = {r["mois"] for r in tables["volumes"] if r["procedure"] == PROCEDURE and r["quartier"] == "est"}
    assert min(months) == "2026-03" and max(months) == f"{datetime.now(UTC):%Y-%m}"


async def test_the_package_names_its_licence_units_and_method_in_french(
    stats: httpx.AsyncClient, env: Env
) -> None:
    described = (await stats.get(f"{OPEN_DATA}/datapackage.json")).json()
    assert described["licenses"][0]["name"] == "etalab-2.0"
    assert "Médiane" in described["description"] and described["methode"]["suppression_threshold"] == 5
    fields = {
        f["name"]: f for r in described["resources"] for f in r["schema"]["fields"] if r["name"] == "delais"
    }
    assert fields["delai_ecoule_p50_jours"]["unit"] == "jour"
    assert fields["delai_ecoule_p50_jours"]["type"] == "number"
    assert "médiane" in fields["delai_ecoule_p50_jours"]["description"]
    assert fields["mois"]["type"] == "yearmonth"
    odbl = package(stats_settings(env, open_data_licence="ODbL-1.0"), datetime.now(UTC))
    assert odbl["licenses"][0]["name"] == "ODbL-1.0"
    # Without any case yet, the files hold the procedures and a header: still a valid package.
    assert json.loads(json.dumps(odbl))["resources"][0]["name"] == "demarches"


async def test_an_unknown_file_is_a_404_naming_the_files_there_are(stats: httpx.AsyncClient) -> None:
    answer = await stats.get(f"{OPEN_DATA}/delays.csv", params={"lang": "en"})
    assert answer.status_code == 404 and "delais.csv" in answer.json()["detail"]


async def test_an_empty_history_still_gives_valid_files(stats: httpx.AsyncClient, tmp_path: Path) -> None:
    tables = await download(stats, tmp_path)
    report = validate(tmp_path / "datapackage.json")
    assert report.valid, report.flatten(["title", "rowNumber", "fieldName", "note"])
    assert len(tables["demarches"]) == 5 and tables["delais"] == []
    assert (tmp_path / "delais.csv").read_text(encoding="utf-8").startswith("procedure,mois,quartier,")
