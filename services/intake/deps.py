"""intake's FastAPI dependencies, as `Annotated` aliases (the common ones are in `shared.deps`)."""

from typing import Annotated, cast

from fastapi import Depends, Request

from services.intake.settings import IntakeSettings
from shared.deps import CatalogueDep, IdempotencyKey, Pool


async def _settings(request: Request) -> IntakeSettings:
    return cast(IntakeSettings, request.app.state.settings)


SettingsDep = Annotated[IntakeSettings, Depends(_settings)]

__all__ = ["CatalogueDep", "IdempotencyKey", "Pool", "SettingsDep"]
