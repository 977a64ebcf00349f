"""Which columns hold PHI ciphertexts, and how to rebuild each row's AAD: what key rotation walks.

A table module registers its encrypted columns at import, next to the table:

    register_encrypted_column(
        FhirResource.__table__, "body", lambda row: f"{row.resource_type}/{row.fhir_id}".encode()
    )

`aad` receives the whole row (every column of the table) and must return the same bytes that were
passed to `PhiCipher.encrypt` for that column, or the value cannot be decrypted to re-encrypt it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import FromClause, Row, Table

__all__ = [
    "EncryptedColumn",
    "encrypted_columns",
    "forget_encrypted_column",
    "register_encrypted_column",
]

AadFunction = Callable[[Row[Any]], bytes]


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    """A column of `table` whose values are PhiCipher ciphertexts bound to `aad(row)`."""

    table: Table
    column: str
    aad: AadFunction
    pk: str = "id"

    @property
    def name(self) -> str:
        """`table.column`, for progress and messages."""
        return f"{self.table.name}.{self.column}"


_REGISTRY: dict[tuple[str, str], EncryptedColumn] = {}


def register_encrypted_column(
    table: FromClause, column: str, aad: AadFunction, pk: str = "id"
) -> None:
    """Declare `table.column` as encrypted; registering the same column again replaces it.

    `table` is a Table, typically `Model.__table__` (which SQLAlchemy types as a FromClause).
    """
    if not isinstance(table, Table):
        raise TypeError(f"register_encrypted_column needs a Table, not {type(table).__name__}")
    for name in (column, pk):
        if name not in table.c:
            raise ValueError(f"{table.name} has no column {name!r}")
    _REGISTRY[(table.name, column)] = EncryptedColumn(table, column, aad, pk)


def forget_encrypted_column(table_name: str, column: str) -> None:
    """Remove a registration (tests that register a table of their own clean up with this)."""
    _REGISTRY.pop((table_name, column), None)


def encrypted_columns() -> tuple[EncryptedColumn, ...]:
    """Every registered encrypted column, in registration order."""
    return tuple(_REGISTRY.values())
