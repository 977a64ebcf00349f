"""Path parameters shared by routes: database ids bounded to what a 64-bit key can hold."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Without the bound a huge id in the URL overflows the driver (a 500) instead of a clear 422.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A row id")]
