"""FHIR references, parsed without I/O: literal, conditional (by identifier), contained, urn:uuid.

FHIR R4 §2.3.0 (References): a reference may be relative (`Patient/123`), absolute
(`https://ehr/fhir/Patient/123`), versioned (`.../_history/2`), a conditional search
(`Practitioner?identifier=system|value`, as Synthea's bulk output writes them), a logical reference
carrying only an `identifier`, a `#id` pointing into `contained`, or a `urn:uuid:` that is only
meaningful inside the Bundle that carries it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote

_LITERAL = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$"
)
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}$")
_CONDITIONAL = re.compile(r"^(?:.*/)?(?P<type>[A-Z][A-Za-z]+)\?(?P<query>.+)$")


@dataclass(frozen=True, slots=True)
class LiteralRef:
    """`Type/id`, possibly written absolute or versioned."""

    resource_type: str
    fhir_id: str


@dataclass(frozen=True, slots=True)
class IdentifierRef:
    """A reference by business identifier, to be looked up in the replica."""

    resource_type: str
    system: str
    value: str

    @property
    def lookup_value(self) -> str:
        """The `system|value` string the identifier index is keyed on."""
        return f"{self.system}|{self.value}"


@dataclass(frozen=True, slots=True)
class ContainedRef:
    """`#id`: a resource contained in the referring one."""

    contained_id: str
    resource_type: str | None


Ref = LiteralRef | IdentifierRef | ContainedRef


def parse_reference(
    reference: Mapping[str, Any] | None,
    *,
    expected_type: str | None = None,
    contained: Mapping[str, Mapping[str, Any]] | None = None,
) -> Ref | None:
    """Parse a FHIR Reference element; None when it points nowhere we can follow."""
    if not reference:
        return None
    text = reference.get("reference")
    if isinstance(text, str) and text:
        return _parse_reference_text(text, reference.get("type") or expected_type, contained)
    identifier = reference.get("identifier")
    ref_type = reference.get("type") or expected_type
    if isinstance(identifier, dict) and ref_type and identifier.get("value"):
        return IdentifierRef(ref_type, str(identifier.get("system", "")), str(identifier["value"]))
    return None


def _parse_reference_text(
    text: str, ref_type: str | None, contained: Mapping[str, Mapping[str, Any]] | None
) -> Ref | None:
    literal = _relative_literal(text)
    if literal is not None:
        return literal
    if text.startswith("#"):
        inner = (contained or {}).get(text[1:])
        return ContainedRef(text[1:], inner.get("resourceType") if inner else ref_type)
    conditional = _CONDITIONAL.match(text)
    if conditional:
        params = parse_qs(conditional["query"])
        token = (params.get("identifier") or [""])[0]
        if "|" in token:
            system, value = token.split("|", 1)
            return IdentifierRef(conditional["type"], unquote(system), unquote(value))
        return None
    found = _LITERAL.search(text)
    if found:
        return LiteralRef(found["type"], found["id"])
    return None


@lru_cache(maxsize=65_536)
def _relative_literal(text: str) -> LiteralRef | None:
    """`Type/id` written relative: the common case when syncing, so each text is parsed once."""
    head, slash, tail = text.partition("/")
    simple = slash and head[:1].isupper() and head.isalpha() and "/" not in tail and "?" not in tail
    return LiteralRef(head, tail) if simple and _ID.match(tail) else None


def contained_by_id(resource: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The resource's contained resources, by their local id."""
    found: dict[str, Mapping[str, Any]] = {}
    for inner in resource.get("contained") or ():
        if isinstance(inner, dict) and isinstance(inner.get("id"), str):
            found[inner["id"]] = inner
    return found


def bundle_urn_map(entries: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Map each entry's `urn:uuid:` fullUrl to the `Type/id` it stands for in this Bundle.

    In a transaction Bundle a POSTed resource may carry no id; its urn:uuid then becomes its id
    (a UUID is a valid FHIR id), so references between entries keep pointing at the same thing.
    """
    mapping: dict[str, str] = {}
    for entry in entries:
        full_url = entry.get("fullUrl")
        resource = entry.get("resource")
        if not (isinstance(full_url, str) and isinstance(resource, dict)):
            continue
        rtype = resource.get("resourceType")
        if full_url.startswith("urn:uuid:") and isinstance(rtype, str):
            rid = resource.get("id") or full_url.removeprefix("urn:uuid:")
            mapping[full_url] = f"{rtype}/{rid}"
    return mapping


def rewrite_references(node: Any, mapping: Mapping[str, str]) -> Any:
    """A copy of `node` with every `reference` found in `mapping` replaced by its target."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in mapping:
                out[key] = mapping[value]
            else:
                out[key] = rewrite_references(value, mapping)
        return out
    if isinstance(node, list):
        return [rewrite_references(item, mapping) for item in node]
    return node
