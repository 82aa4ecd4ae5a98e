"""The bench's baseline: the least a FastAPI service on PostgreSQL can do per request.

`POST /insert` stores the JSON body as one row (one INSERT), `GET /row/{id}` reads one row back by primary
key (one SELECT). No validation, no events, no bus: what Suivi's intake and tracking do beyond this is what
the bench's ratios measure. Same server (uvicorn, one worker), same pool size, same PostgreSQL.

Run alone: `DATABASE_URL=... uvicorn devtools.bench_baseline:create_app --factory`.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
from fastapi import Body, FastAPI, HTTPException, Request

SCHEMA_SQL = (
    "CREATE SCHEMA IF NOT EXISTS bench_baseline; "
    "CREATE TABLE IF NOT EXISTS bench_baseline.rows (id bigserial PRIMARY KEY, body jsonb NOT NULL)"
)


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    max_size = int(os.environ.get("DB_POOL_MAX", "10"))  # the services' default pool size
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=max_size)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await conn.execute(SCHEMA_SQL)
        app.state.pool = pool
        yield
    finally:
        await pool.close()


def create_app() -> FastAPI:
    app = FastAPI(title="Suivi bench baseline", lifespan=_lifespan)

    @app.post("/insert", status_code=201)
    async def insert(request: Request, body: Annotated[dict[str, Any], Body()]) -> dict[str, int]:
        row_id = await _pool(request).fetchval(
            "INSERT INTO bench_baseline.rows(body) VALUES ($1::jsonb) RETURNING id", json.dumps(body)
        )
        return {"id": int(row_id)}

    @app.get("/row/{row_id}")
    async def row(request: Request, row_id: int) -> dict[str, Any]:
        body = await _pool(request).fetchval("SELECT body FROM bench_baseline.rows WHERE id = $1", row_id)
        if body is None:
            raise HTTPException(status_code=404)
        return {"id": row_id, "body": json.loads(body)}

    @app.get("/readyz")
    async def readyz(request: Request) -> dict[str, str]:
        await _pool(request).fetchval("SELECT 1")
        return {"status": "ready"}

    return app
