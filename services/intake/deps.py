"""intake's FastAPI dependencies, as `Annotated` aliases (the common ones are in `shared.deps`)."""

from typing import Annotated, cast

from fastapi import Depends, Request

from services.intake.settings import IntakeSettings
from shared.auth import Agent, CurrentAgent
from shared.deps import CatalogueDep, IdempotencyKey, Pool
from shared.http import ApiError
from shared.places import Geocoder
from shared.procedures import Role


async def _settings(request: Request) -> IntakeSettings:
    return cast(IntakeSettings, request.app.state.settings)


SettingsDep = Annotated[IntakeSettings, Depends(_settings)]


async def _geocoder(request: Request) -> Geocoder:
    return cast(Geocoder, request.app.state.geocoder)


GeocoderDep = Annotated[Geocoder, Depends(_geocoder)]


async def _agent_tokens_checked(request: Request) -> None:
    """Before the token is read: intake may have been started without an identity provider."""
    if request.app.state.token_verifier is None:
        raise ApiError("intake.agent_tokens_not_configured", status=503)


async def _admin(_: Annotated[None, Depends(_agent_tokens_checked)], agent: CurrentAgent) -> Agent:
    if agent.role is not Role.ADMIN:
        raise ApiError("auth.forbidden_role", status=403, role=agent.role.value, allowed=Role.ADMIN.value)
    return agent


# A city agent whose token says `role: admin`: 401 without a valid token, 403 for another role.
CurrentAdmin = Annotated[Agent, Depends(_admin)]

__all__ = ["CatalogueDep", "CurrentAdmin", "GeocoderDep", "IdempotencyKey", "Pool", "SettingsDep"]
