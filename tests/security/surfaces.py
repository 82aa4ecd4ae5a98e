"""Searching what a place holds for personal data: a `Surface` is the texts read from one place (a stream,
a service's tables, its public answers, the logs...), and what must be among them for the read to count.
The search is case-insensitive and also reads each text decoded (HTML entities, URL and JSON escapes)."""

from __future__ import annotations

import contextlib
import html
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

import asyncpg
import nats

# What is searched for, by what it is ("name", "phone"...): the ways a person's data may be written.
Private = Mapping[str, tuple[str, ...]]


@dataclass
class Surface:
    """Texts read from one place; `proof`: what must be in them for the read to count."""

    name: str
    texts: list[str] = field(default_factory=list)
    proof: list[str] = field(default_factory=list)

    def found(self, private: Private) -> Iterator[tuple[str, str]]:
        """Each piece of `private` data found: what it is, and where (a message naming the surface)."""
        for text in self.texts:
            for readable in readings(text):
                lowered = readable.lower()
                for what, needles in private.items():
                    for needle in needles:
                        if (at := lowered.find(needle.lower())) >= 0:
                            excerpt = readable[max(0, at - 120) : at + 80]
                            yield what, f"{self.name}: the {what} ({needle!r}) in …{excerpt}…"

    def unproven(self) -> list[str]:
        joined = "\n".join(self.texts)
        return [p for p in self.proof if p not in joined]


def readings(text: str) -> set[str]:
    """The text as stored, and as a person would read it once decoded (HTML, URL, JSON escapes)."""
    read = {text, html.unescape(text), unquote_plus(text)}
    with contextlib.suppress(ValueError):
        read.add(json.dumps(json.loads(text), ensure_ascii=False))
    return read


class LogRecords(logging.Handler):
    """Keeps every record the root logger passes on, to be searched later."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_PLAIN_RECORD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def log_text(record: logging.LogRecord) -> str:
    """A record as any handler could write it: its message, its extra fields, its traceback."""
    extras = {k: v for k, v in record.__dict__.items() if k not in _PLAIN_RECORD}
    trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
    return f"{record.name} {record.levelname} {record.getMessage()} {extras!r} {trace}"


async def streams(nats_url: str) -> dict[str, Surface]:
    """Every message kept in every JetStream stream (CASES, the key-value buckets...), by stream."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    surfaces = {}
    try:
        for info in await js.streams_info():
            name = str(info.config.name)
            kept = Surface(f"stream {name}")
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(name, seq)
                body = (msg.data or b"").decode(errors="replace")
                kept.texts.append(f"{msg.subject} {msg.headers!r} {body}")
            surfaces[name] = kept
    finally:
        await nc.close()
    return surfaces


async def tables(database_url: str, schema: str, *, proof: list[str], skip: tuple[str, ...] = ()) -> Surface:
    """Every row of every table of `schema` but those in `skip`, each as PostgreSQL writes it as text."""
    conn = await asyncpg.connect(database_url)
    rows = Surface(f"{schema}'s tables", proof=proof)
    try:
        names = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
            "AND table_type = 'BASE TABLE' ORDER BY table_name",
            schema,
        )
        for table in [n["table_name"] for n in names if n["table_name"] not in skip]:
            found = await conn.fetch(f'SELECT t::text AS row FROM {schema}."{table}" t')
            rows.texts += [f"{table}: {r['row']}" for r in found]
    finally:
        await conn.close()
    return rows
