"""The eventsourcing comparison times what it claims: both sides append every event, track every fold and
end with the same read model, in schemas of their own."""

from __future__ import annotations

import itertools
import os
from typing import Any

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from devtools.bench_eventsourcing import APPLICATION, CONSUMER, READ_MODEL, measure_eventsourcing
from devtools.servers import PostgresServer

CASES, EVENTS_PER_CASE = 20, 3
EVENTS = CASES * EVENTS_PER_CASE
_databases = itertools.count(1)


def _one(conn: psycopg.Connection[Any], query: str, *names: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(SQL(query).format(*map(Identifier, names)), params).fetchone()
    return row[0] if row else None


def _read_model(conn: psycopg.Connection[Any], schema: str) -> list[tuple[Any, ...]]:
    query = SQL("SELECT case_id, version, last_type, events FROM {0}.{1} ORDER BY case_id")
    return conn.execute(query.format(Identifier(schema), Identifier(READ_MODEL))).fetchall()


@pytest.mark.parametrize(
    ("settings", "tracking_rows"),
    [({}, 1), ({"POSTGRES_ENABLE_DB_FUNCTIONS": "y"}, 1), ({"SINGLE_ROW_TRACKING": "no"}, EVENTS)],
    ids=["defaults", "db-functions", "a-tracking-row-per-event"],
)
def test_both_sides_append_every_event_track_every_fold_and_end_with_the_same_read_model(
    pg_server: PostgresServer, settings: dict[str, str], tracking_rows: int
) -> None:
    url = pg_server.create_database(f"bench_es_{os.getpid()}_{next(_databases)}")

    figure = measure_eventsourcing(
        database_url=url,
        cases=CASES,
        events_per_case=EVENTS_PER_CASE,
        rounds=1,
        eventsourcing_configurations={"tried": settings},
    )

    assert figure.value > 0 and figure.baseline and figure.ratio
    (round_,) = figure.details["written"]
    suivi, es = round_["schemas"]["suivi"], round_["schemas"]["tried"]
    with psycopg.connect(url) as conn:
        assert _one(conn, "SELECT count(*) FROM {0}.events", suivi) == EVENTS
        assert _one(conn, "SELECT count(DISTINCT (case_id, version)) FROM {0}.events", suivi) == EVENTS
        assert _one(conn, "SELECT count(*) FROM {0}.outbox", suivi) == EVENTS
        assert _one(conn, "SELECT count(*) FROM {0}.folded_events", suivi) == EVENTS
        assert _one(conn, "SELECT count(*) FROM {0}.folded_events", f"{suivi}_batched") == EVENTS
        position = "SELECT stream_seq FROM {0}.consumer_positions WHERE consumer = %s"
        assert _one(conn, position, suivi, params=(CONSUMER,)) == EVENTS

        events_table, tracking_table = f"{APPLICATION.lower()}_events", f"{READ_MODEL}_tracking"
        assert _one(conn, "SELECT count(*) FROM {0}.{1}", es, events_table) == EVENTS
        assert _one(conn, "SELECT max(originator_version) FROM {0}.{1}", es, events_table) == EVENTS_PER_CASE
        rows = "SELECT count(*) FROM {0}.{1} WHERE application_name = %s"
        assert _one(conn, rows, es, tracking_table, params=(APPLICATION,)) == tracking_rows
        last = "SELECT max(notification_id) FROM {0}.{1} WHERE application_name = %s"
        assert _one(conn, last, es, tracking_table, params=(APPLICATION,)) == EVENTS

        summaries = _read_model(conn, suivi)
        assert len(summaries) == CASES
        assert {(version, events) for _, version, _, events in summaries} == {
            (EVENTS_PER_CASE, EVENTS_PER_CASE)
        }
        assert _read_model(conn, es) == summaries
        assert _read_model(conn, f"{suivi}_batched") == summaries
