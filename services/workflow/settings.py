from pydantic import AliasChoices, Field

from shared.auth import AgentAuthSettings
from shared.settings import InternalApiSettings


class WorkflowSettings(AgentAuthSettings, InternalApiSettings):
    port: int = Field(default=8002, validation_alias=AliasChoices("WORKFLOW_PORT", "port"))
    # Agents are warned (a DeadlineApproaching event, cases at risk first in the queue) this many days before.
    warn_days: int = Field(
        default=5, ge=0, le=60, validation_alias=AliasChoices("WORKFLOW_WARN_DAYS", "warn_days")
    )
    deadline_check_seconds: float = Field(
        default=60,
        gt=0,
        validation_alias=AliasChoices("WORKFLOW_DEADLINE_CHECK_SECONDS", "deadline_check_seconds"),
    )
    # intake holds the applicants' contact details; workflow asks for them on its internal API.
    intake_internal_url: str = Field(
        default="http://127.0.0.1:8001",
        validation_alias=AliasChoices("INTAKE_INTERNAL_URL", "intake_internal_url"),
    )
    # notify holds what the citizen was told of; the case view shows it from notify's internal API.
    notify_internal_url: str = Field(
        default="http://127.0.0.1:8005",
        validation_alias=AliasChoices("NOTIFY_INTERNAL_URL", "notify_internal_url"),
    )
