"""intake's FastAPI dependencies, as `Annotated` aliases."""

from typing import Annotated, cast

import asyncpg
from fastapi import Depends, Request

from services.intake.settings import IntakeSettings
from shared.procedures import Catalogue


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _catalogue(request: Request) -> Catalogue:
    return cast(Catalogue, request.app.state.catalogue)


def _settings(request: Request) -> IntakeSettings:
    return cast(IntakeSettings, request.app.state.settings)


Pool = Annotated[asyncpg.Pool, Depends(_pool)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]
SettingsDep = Annotated[IntakeSettings, Depends(_settings)]
