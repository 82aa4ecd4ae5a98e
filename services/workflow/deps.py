"""workflow's FastAPI dependencies, as `Annotated` aliases (the common ones are in `shared.deps`)."""

from typing import Annotated, cast

from fastapi import Depends, Request

from services.workflow.clock import Clock
from services.workflow.settings import WorkflowSettings
from shared.deps import CatalogueDep, IdempotencyKey, Pool


async def _settings(request: Request) -> WorkflowSettings:
    return cast(WorkflowSettings, request.app.state.settings)


async def _clock(request: Request) -> Clock:
    return cast(Clock, request.app.state.clock)


SettingsDep = Annotated[WorkflowSettings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]

__all__ = ["CatalogueDep", "ClockDep", "IdempotencyKey", "Pool", "SettingsDep"]
