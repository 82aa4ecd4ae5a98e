"""intake's Open311 GeoReport v2 door: the services (one per category of each street-report procedure)
and their definitions; reports are taken in `open311_requests.py`. tracking answers `GET requests`.

Reports are answered at once (`type: realtime`): the answer names the new request; there is no token to
poll (`tokens/{token}` is not served).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel, Field

from services.intake.deps import CatalogueDep
from services.intake.open311_fields import Door, attribute_of
from services.intake.open311_requests import router as requests_router
from shared.http import Lang
from shared.i18n import translate
from shared.open311 import Open311Service
from shared.open311_http import (
    answer,
    format_of,
    in_both_formats,
    open311_router,
    refuse,
    services_of,
    with_fallback,
)
from shared.procedures import Catalogue

router = open311_router(tags=["open311"])
Jurisdiction = Annotated[
    str | None, Query(max_length=200, description="accepted and ignored: this endpoint serves one city")
]


class ServiceOpen311(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool = Field(description="true when the service definition has attributes to send")
    type: str = Field(description="always `realtime`: a report is answered with its id at once")
    keywords: str
    group: str = Field(description="the city's department the reports go to")


class ValueOpen311(BaseModel):
    key: str
    name: str


class AttributeOpen311(BaseModel):
    variable: bool
    code: str
    datatype: str = Field(description="string, number, datetime, text or singlevaluelist")
    required: bool
    datatype_description: str | None = None
    order: int
    description: str
    values: list[ValueOpen311] | None = None


class ServiceDefinitionOpen311(BaseModel):
    service_code: str
    attributes: list[AttributeOpen311]


def _door(catalogue: Catalogue, service: Open311Service) -> Door:
    procedure = catalogue.latest(service.procedure)
    assert procedure is not None, "an offered service's procedure is in the catalogue"
    return Door.of(procedure)


def _service(catalogue: Catalogue, service: Open311Service, lang: str) -> dict[str, object]:
    door = _door(catalogue, service)
    procedure = door.procedure
    return {
        "service_code": service.code,
        "service_name": service.label.in_(lang),
        "description": translate(
            "open311.service_description", lang, title=procedure.title.in_(lang), name=service.label.in_(lang)
        ),
        "metadata": bool(door.attributes),
        "type": "realtime",
        "keywords": ", ".join(dict.fromkeys(k for k in (service.value, service.group, procedure.code) if k)),
        "group": service.group,
    }


_LIST_DOC = (
    "The services reports can be made for: one per category of each street-report procedure, named in "
    "the language asked (`lang`, `Accept-Language`; French by default). Reports are answered at once "
    "(`type: realtime`), so no token is ever given to poll."
)


@in_both_formats(router.get, "/services", response_model=list[ServiceOpen311], description=_LIST_DOC)
async def list_services(
    request: Request, catalogue: CatalogueDep, lang: Lang, jurisdiction_id: Jurisdiction = None
) -> Response:
    services = [_service(catalogue, s, lang) for s in services_of(request).offered()]
    return answer(format_of(request), services, root="services")


ServiceCode = Annotated[str, Path(max_length=200, description="a `service_code` of `services.json`")]


_DEFINITION_DOC = (
    "What a report of this service may say beyond the spec's own parameters, as `attribute[code]=value`: "
    "the procedure's other fields, their types mapped to the spec's datatypes."
)


@in_both_formats(
    router.get,
    "/services/{service_code}",
    response_model=ServiceDefinitionOpen311,
    responses={404: {"description": "No such service."}},
    description=_DEFINITION_DOC,
)
async def service_definition(
    request: Request,
    catalogue: CatalogueDep,
    lang: Lang,
    service_code: ServiceCode,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    service = services_of(request).get(service_code)
    if service is None or not service.offered:
        raise refuse(404, "open311.unknown_service", lang, code=service_code)
    door = _door(catalogue, service)
    attributes = [attribute_of(f, order, lang) for order, f in enumerate(door.attributes, start=1)]
    definition = {"service_code": service.code, "attributes": attributes}
    return answer(format_of(request), definition, root="service_definition")


# For `build_app`, last of its routers; then `install_open311(app)`.
ROUTERS = with_fallback(router, requests_router)
