"""`/`: each person lands on the first page their role may open."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse

from clinicflow.security.permissions import Permission
from clinicflow.web.auth import Staff, require
from clinicflow.web.staff_ui import home_for

router = APIRouter()


@router.get("/", response_class=RedirectResponse)
def home(staff: Annotated[Staff, Depends(require(Permission.ACCOUNT))]) -> RedirectResponse:
    """Today for the care team, Automations for the automation team, Audit for compliance."""
    return RedirectResponse(home_for(staff), status_code=303)
