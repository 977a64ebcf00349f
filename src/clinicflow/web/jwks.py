"""`/.well-known/jwks.json`: the practice's public signing keys, the URL an EHR registers.

Only public halves leave the key files; the EHR fetches this to check our SMART client assertions.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from clinicflow.ehr.signing import public_jwks
from clinicflow.web.auth import public
from clinicflow.web.health import State

router = APIRouter(
    dependencies=[Depends(public("the EHR fetches our public signing keys (SMART)"))]
)


@router.get("/.well-known/jwks.json")
def jwks(state: State, response: Response) -> dict[str, Any]:
    """The JWKS (empty until `clinicflow ehr keygen` has run)."""
    # EHRs cache the JWKS; an hour keeps a rotation visible the same day.
    response.headers["Cache-Control"] = "public, max-age=3600"
    return public_jwks(state.settings.keys_dir, state.settings.fhir_key_path)
