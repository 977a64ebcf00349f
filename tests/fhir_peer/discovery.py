"""Unauthenticated discovery: `.well-known/smart-configuration` and the CapabilityStatement.

Both name the token endpoint by absolute URL on the host:port the client used, as a client
takes `aud` for its assertion from there (SMART App Launch 2.x conformance; the CapabilityStatement
carries it in the oauth-uris extension for older clients).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from tests.fhir_peer.context import fhir_base, peer_of, token_url
from tests.fhir_peer.fhirtime import format_instant
from tests.fhir_peer.outcome import fhir_response
from tests.fhir_peer.search import STATUS_TYPES

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
EXPORT_DEFINITION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
PATIENT_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
GROUP_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
SCOPES = ["system/*.rs", "system/*.read", "system/*.cruds", "system/*.write", "system/*.*"]

_COMMON_PARAMS = [
    {"name": "_id", "type": "token"},
    {"name": "_lastUpdated", "type": "date"},
]
_STATUS_PARAM = {"name": "status", "type": "token"}
_APPOINTMENT_PARAMS = [
    {"name": "date", "type": "date"},
    {"name": "patient", "type": "reference"},
]


async def smart_configuration(request: Request) -> Response:
    """GET {base}/.well-known/smart-configuration (SMART App Launch 2.x §2.1)."""
    body = {
        "token_endpoint": token_url(request),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": SCOPES,
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
    }
    return fhir_response(body, media_type="application/json")


def _resource(resource_type: str) -> dict[str, Any]:
    params = list(_COMMON_PARAMS)
    if resource_type in STATUS_TYPES:
        params.append(_STATUS_PARAM)
    if resource_type == "Appointment":
        params += _APPOINTMENT_PARAMS
    entry: dict[str, Any] = {
        "type": resource_type,
        "versioning": "versioned-update",
        "readHistory": False,
        "updateCreate": True,
        "conditionalCreate": True,
        "interaction": [
            {"code": code}
            for code in ("read", "vread", "search-type", "update", "create", "delete")
        ],
        "searchParam": params,
    }
    if resource_type == "Appointment":
        entry["searchInclude"] = ["Appointment:patient"]
    if resource_type == "Patient":
        entry["operation"] = [{"name": "export", "definition": PATIENT_EXPORT}]
    if resource_type == "Group":
        entry["operation"] = [{"name": "export", "definition": GROUP_EXPORT}]
    return entry


async def metadata(request: Request) -> Response:
    """GET {base}/metadata: a CapabilityStatement for FHIR 4.0.1 JSON."""
    peer = peer_of(request)
    body = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_instant(peer.now_us()),
        "kind": "instance",
        "software": {"name": "clinicflow FHIR test peer"},
        "implementation": {"description": "FHIR test peer", "url": fhir_base(request)},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [
                        {
                            "url": OAUTH_URIS,
                            "extension": [{"url": "token", "valueUri": token_url(request)}],
                        }
                    ],
                },
                "resource": [_resource(t) for t in peer.supported_types()],
                "operation": [{"name": "export", "definition": EXPORT_DEFINITION}],
            }
        ],
    }
    return fhir_response(body)
