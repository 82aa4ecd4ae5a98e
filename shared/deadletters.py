"""List and replay the messages a reader set aside as bad in themselves (its dead letters).

    python -m shared.deadletters list   --service tracking [--all]
    python -m shared.deadletters replay --service tracking [--seq N] [--wait 30]

A dead letter is kept in the reader's schema (`<service>.dead_letters`) with the reason it was set aside.
Fix the cause (deploy the missing procedure version, the corrected code), then replay: the command marks
the letters for replay and the running service's consumer hands each one to its handler again, exactly once
in effect like any event; the command waits and says, for each letter, what came of it. It needs
`DATABASE_URL` (the service's database), nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import asyncpg

from shared.db import create_pool
from shared.events import Envelope
from shared.settings import ServiceSettings

READERS = ("tracking", "workflow", "stats", "notify")


async def _table_exists(pool: asyncpg.Pool, schema: str) -> bool:
    return bool(await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.dead_letters"))


def _describe(row: asyncpg.Record) -> str:
    try:
        envelope = Envelope.model_validate_json(bytes(row["body"]))
        what = f"{envelope.type} of case {envelope.subject}"
    except ValueError:
        what = f"(not a Suivi event) on {row['subject']}"
    if row["replayed_at"] is not None:
        state = f"replayed {row['replayed_at']:%Y-%m-%d %H:%M:%S}"
    elif row["replay_requested_at"] is not None:
        state = "replay asked, waiting for the service"
    else:
        state = "set aside"
    return f"seq {row['stream_seq']:>8}  {row['recorded_at']:%Y-%m-%d %H:%M:%S}  {state:<28} {what}\n{'':>15}{row['reason']}"


async def list_letters(pool: asyncpg.Pool, schema: str, *, include_replayed: bool) -> list[asyncpg.Record]:
    condition = "" if include_replayed else "WHERE replayed_at IS NULL"
    return list(await pool.fetch(f"SELECT * FROM {schema}.dead_letters {condition} ORDER BY stream_seq"))


async def request_replay(pool: asyncpg.Pool, schema: str, *, seq: int | None) -> list[int]:
    """Mark the letters (one, or every one not replayed yet) for replay; returns their sequences."""
    rows = await pool.fetch(
        f"UPDATE {schema}.dead_letters SET replay_requested_at = now() "
        "WHERE replayed_at IS NULL AND ($1::bigint IS NULL OR stream_seq = $1) RETURNING stream_seq",
        seq,
    )
    return sorted(r["stream_seq"] for r in rows)


async def wait_for_outcome(
    pool: asyncpg.Pool, schema: str, seqs: list[int], *, since: Any, wait: float
) -> dict[int, str]:
    """What came of each replay: replayed, failed again (with why), or still waiting."""
    deadline = time.monotonic() + wait
    while True:
        rows = await pool.fetch(
            f"SELECT stream_seq, reason, replay_requested_at, replayed_at, recorded_at "
            f"FROM {schema}.dead_letters WHERE stream_seq = ANY($1)",
            seqs,
        )
        outcome: dict[int, str] = {}
        for row in rows:
            if row["replayed_at"] is not None:
                outcome[row["stream_seq"]] = "replayed: folded"
            elif row["replay_requested_at"] is None and row["recorded_at"] >= since:
                outcome[row["stream_seq"]] = f"failed again, still set aside: {row['reason']}"
        if len(outcome) == len(seqs) or time.monotonic() > deadline:
            for seq in seqs:
                outcome.setdefault(seq, "not replayed yet: is the service running? it replays when it runs")
            return outcome
        await asyncio.sleep(0.5)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.deadletters", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("list", "replay"))
    parser.add_argument(
        "--service", required=True, choices=READERS, help="the reader whose letters these are"
    )
    parser.add_argument("--seq", type=int, help="replay only the letter of this stream sequence")
    parser.add_argument("--all", action="store_true", help="list replayed letters too")
    parser.add_argument("--wait", type=float, default=30, help="seconds to wait for the replay's outcome")
    args = parser.parse_args(argv)
    pool = await create_pool(ServiceSettings().database_url, max_size=2)
    try:
        if not await _table_exists(pool, args.service):
            print(f"{args.service} keeps no dead letters in this database (has it ever started here?)")
            return 2
        if args.command == "list":
            rows = await list_letters(pool, args.service, include_replayed=args.all)
            for row in rows:
                print(_describe(row))
            print(f"{len(rows)} dead letter(s) of {args.service}{'' if args.all else ' not replayed'}")
            return 0
        since = await pool.fetchval("SELECT now()")
        seqs = await request_replay(pool, args.service, seq=args.seq)
        if not seqs:
            print(f"nothing to replay for {args.service}" + (f" at seq {args.seq}" if args.seq else ""))
            return 1 if args.seq else 0
        print(f"asked {args.service} to replay {len(seqs)} dead letter(s); waiting up to {args.wait:.0f} s")
        outcome = await wait_for_outcome(pool, args.service, seqs, since=since, wait=args.wait)
        for seq in seqs:
            print(f"seq {seq}: {outcome[seq]}")
        return 0 if all(o.startswith("replayed") for o in outcome.values()) else 1
    finally:
        await pool.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
