"""SMART system scopes, v1 (`system/Patient.read`) and v2 (`system/*.cruds`).

SMART App Launch 2.x, scopes-and-launch-context: v2 permissions are the letters c, r, u, d, s
in that order (create, read, update, delete, search); v1 `.read` means r+s, `.write` c+u+d and
`.*` all of them. A v2 scope may carry a `?param=value` restriction; the peer grants it but
does not enforce the restriction (documented, like many servers).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_SCOPE = re.compile(r"^system/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<perm>[a-z*]+)(?:\?\S*)?$")
_V2 = re.compile(r"^c?r?u?d?s?$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


class Scope(NamedTuple):
    """One granted scope: the resource type (or `*`) and the permission letters it gives."""

    text: str
    resource_type: str
    letters: str


def parse_scope(text: str) -> Scope | None:
    """The scope if the peer grants it (a well-formed system scope), else None."""
    match = _SCOPE.match(text)
    if match is None:
        return None
    perm = match.group("perm")
    if perm in _V1:
        letters = _V1[perm]
    elif perm and _V2.match(perm):
        letters = perm
    else:
        return None
    return Scope(text, match.group("type"), letters)


def allows(scopes: tuple[Scope, ...], resource_type: str, letter: str) -> bool:
    """Whether any scope gives permission `letter` (c, r, u, d or s) on `resource_type`."""
    return any(
        letter in scope.letters and scope.resource_type in ("*", resource_type) for scope in scopes
    )
