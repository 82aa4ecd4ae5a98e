"""workflow's FastAPI dependencies, as `Annotated` aliases."""

from typing import Annotated, cast

import asyncpg
from fastapi import Depends, Request

from services.workflow.clock import Clock
from services.workflow.settings import WorkflowSettings
from shared.procedures import Catalogue


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _catalogue(request: Request) -> Catalogue:
    return cast(Catalogue, request.app.state.catalogue)


def _settings(request: Request) -> WorkflowSettings:
    return cast(WorkflowSettings, request.app.state.settings)


def _clock(request: Request) -> Clock:
    return cast(Clock, request.app.state.clock)


Pool = Annotated[asyncpg.Pool, Depends(_pool)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]
SettingsDep = Annotated[WorkflowSettings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
