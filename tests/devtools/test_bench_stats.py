"""The bench's bulk fold gives a history exactly the tables stats' consumer folds from it, and refuses
what it does not know how to do in bulk."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from devtools.bench_stats import (
    BulkFold,
    UnknownStatement,
    differences,
    fold_each,
    fold_in_bulk,
    history,
    new_read_model,
    url_of,
)
from devtools.servers import PostgresServer
from shared.db import create_pool
from shared.events import make_envelope
from shared.events.intake import CaseSubmitted
from shared.procedures import load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR
from tests.stats.test_figures import Case, at

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


async def test_a_history_folded_in_bulk_has_the_tables_of_folding_it_event_by_event(
    pg_server: PostgresServer,
) -> None:
    events = list(history(load_catalogue(DEFAULT_PROCEDURES_DIR), scale=0.05, now=NOW))
    assert len(events) > 500
    server, name = pg_server.url(), f"bench_{os.getpid()}"
    async with (
        new_read_model(server, f"{name}_bulk") as bulk,
        new_read_model(server, f"{name}_each") as each,
    ):
        assert await fold_in_bulk(bulk, events) == len(events)
        pool = await create_pool(url_of(server, f"{name}_each"), max_size=1)
        try:
            assert await fold_each(pool, events) == len(events)
        finally:
            await pool.close()

        assert await differences(each, bulk) == []
        assert await bulk.fetchval("SELECT count(*) FROM stats.cases") == len(events)
        assert await bulk.fetchval("SELECT count(*) FROM stats.cases WHERE decided_at IS NULL") > 0

        await bulk.execute("UPDATE stats.bins SET n = n + 1 WHERE bin = (SELECT min(bin) FROM stats.bins)")
        assert [found.split(":")[0] for found in await differences(each, bulk)] == ["bins"]


async def test_the_bulk_fold_refuses_an_event_whose_writes_it_cannot_add_up() -> None:
    submitted = Case(at("2026-03-02T09:00")).events()[0]  # a live case: its handler records step entries
    assert isinstance(submitted, CaseSubmitted)
    envelope = make_envelope(submitted, case_id=submitted.case_id, procedure=submitted.procedure)
    with pytest.raises(UnknownStatement, match="step_entries"):
        await BulkFold(None).fold([(envelope, submitted)])
