"""Demo submissions, one per procedure: what `make run` loads, and what tests build cases from."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

VALID_DATA: dict[str, dict[str, Any]] = {
    "permis-construire": {
        "parcel_address": "12 rue des Lilas, 69003 Lyon",
        "cadastral_reference": "AB 123",
        "district": "est",
        "floor_area_m2": 120,
        "project_description": "Maison individuelle de plain-pied avec garage.",
    },
    "declaration-prealable": {
        "parcel_address": "4 impasse du Moulin, 69005 Lyon",
        "cadastral_reference": "C 42",
        "district": "ouest",
        "works_type": "panneaux-solaires",
        "project_description": "Pose de 8 panneaux photovoltaïques sur le pan sud de la toiture.",
    },
    "acte-naissance": {
        "kind": "extrait-avec-filiation",
        "requester_relation": "personne-concernee",
        "surname": "Martin",
        "first_names": "Camille Louise",
        "birth_date": "1990-05-17",
        "delivery": "courrier",
    },
    "carte-stationnement-resident": {
        "address": "8 place Bellecour, 69002 Lyon",
        "district": "centre",
        "vehicle_registration": "AB-123-CD",
        "vehicle_energy": "electrique",
        "proof_of_address_url": "https://documents.example.org/justificatif.pdf",
        "registration_certificate_url": "https://documents.example.org/carte-grise.pdf",
    },
    "signalement-voirie": {
        "category": "eclairage",
        "location": {"address": "3 place du Marché"},
        "description": "Le lampadaire devant le numéro 3 ne s'allume plus depuis une semaine.",
    },
}

APPLICANT: dict[str, Any] = {
    "name": "Camille Martin",
    "email": "camille.martin@example.org",
    "phone": "06 12 34 56 78",
    "language": "fr",
}


def submission(procedure: str) -> dict[str, Any]:
    return {"procedure": procedure, "data": VALID_DATA[procedure], "applicant": APPLICANT, "channel": "web"}


def load(intake_url: str) -> list[dict[str, Any]]:
    """Submit one demo case per procedure; the same Idempotency-Key makes a second `make run` reuse them.
    The key names the demo data too: when a release changes a demo case, it is a new case, not a 422 for
    a key reused with other data."""
    cases = []
    with httpx.Client(base_url=intake_url, timeout=30) as client:
        for procedure in VALID_DATA:
            body = submission(procedure)
            digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
            answer = client.post(
                "/v1/cases", json=body, headers={"Idempotency-Key": f"demo-{procedure}-{digest}"}
            )
            if answer.is_error:
                raise SystemExit(
                    f"the demo case of {procedure} was refused ({answer.status_code}): {answer.text}"
                )
            cases.append(answer.json())
    return cases
