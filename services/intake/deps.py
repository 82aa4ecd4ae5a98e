"""intake's FastAPI dependencies, as `Annotated` aliases."""

from typing import Annotated, cast

import asyncpg
from fastapi import Depends, Header, Request

from services.intake.settings import IntakeSettings
from shared.http import ApiError
from shared.procedures import Catalogue


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _catalogue(request: Request) -> Catalogue:
    return cast(Catalogue, request.app.state.catalogue)


def _settings(request: Request) -> IntakeSettings:
    return cast(IntakeSettings, request.app.state.settings)


def _idempotency_key(
    idempotency_key: Annotated[
        str | None, Header(description="retries with the same key record the request once")
    ] = None,
) -> str | None:
    key = idempotency_key
    if key is not None and not (1 <= len(key) <= 200 and key.isprintable() and key.strip()):
        raise ApiError("error.idempotency_key_invalid")
    return key


Pool = Annotated[asyncpg.Pool, Depends(_pool)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]
SettingsDep = Annotated[IntakeSettings, Depends(_settings)]
IdempotencyKey = Annotated[str | None, Depends(_idempotency_key)]
