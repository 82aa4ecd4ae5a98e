"""FastAPI dependencies every service uses, as `Annotated` aliases.

`async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop per request.
"""

import hmac
from typing import Annotated, cast

import asyncpg
from fastapi import Depends, Header, Request

from shared import params
from shared.http import ApiError
from shared.procedures import Catalogue, Procedure


async def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


async def _catalogue(request: Request) -> Catalogue:
    return cast(Catalogue, request.app.state.catalogue)


async def _idempotency_key(
    idempotency_key: Annotated[
        str | None, Header(description="retries with the same key record the request once")
    ] = None,
) -> str | None:
    return params.checked_idempotency_key(idempotency_key)


async def _internal_caller(
    request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    """Another Suivi service, proven by the internal token (`InternalApiSettings`), or a 401."""
    expected = f"Bearer {request.app.state.settings.internal_token}"
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise ApiError("auth.missing_token", status=401)


def procedure_or_404(catalogue: Catalogue, code: str) -> Procedure:
    """The newest version of a procedure, or a 404 naming the procedures there are."""
    procedure = catalogue.latest(code)
    if procedure is None:
        raise ApiError(
            "error.unknown_procedure", status=404, code=code, available=", ".join(catalogue.codes())
        )
    return procedure


Pool = Annotated[asyncpg.Pool, Depends(_pool)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]
IdempotencyKey = Annotated[str | None, Depends(_idempotency_key)]
# A route of a service's internal API (`/internal/...`): `dependencies=[InternalCaller]` on its router.
InternalCaller = Depends(_internal_caller)
