"""Reading a reminder templates file (TOML): which templates it holds, and where each starts.

A practice's staff edit these files, so every problem is reported where they will look for it:
the file, the template as the file spells it (`sms-reminder.es`) and the file's line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clinicflow.errors import InputError

# Each kind of message and the parts its template must have.
KINDS: Mapping[str, tuple[str, ...]] = {
    "sms-reminder": ("text",),
    "email-reminder": ("subject", "text", "html"),
    "sms-confirmed": ("text",),  # the answer to "C"
    "sms-cancelled": ("text",),  # the answer to "X", once the EHR has cancelled
    "sms-reschedule": ("text",),  # the answer to "R": the front desk will be in touch
    # Waitlist backfill: a freed slot offered, and the answers to a claim.
    "sms-slot-offer": ("text",),
    "email-slot-offer": ("subject", "text", "html"),
    "slot-booked": ("text",),  # the claim won: the visit is booked
    "slot-taken": ("text",),  # someone else's claim won: still on the list
    "slot-filled": ("text",),  # told to those offered who had not answered yet
}
LANGUAGES = ("en", "es")


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """One thing wrong with a template, where a person editing the file will find it."""

    file: str
    template: str | None
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = [self.file]
        if self.template:
            where.append(f"template {self.template}")
        if self.line:
            where.append(f"line {self.line}")
        return ": ".join([*where, self.reason])


class TemplateError(InputError):
    """Templates that cannot be used; one line per problem, each naming file, template, line."""

    code = "reminders.template_invalid"

    def __init__(self, problems: Sequence[TemplateProblem]):
        self.problems = tuple(problems)
        where = self.problems[0].file if self.problems else ""
        super().__init__("\n".join(str(p) for p in self.problems), where=where)

    def __str__(self) -> str:
        return self.message  # each line already says where


@dataclass(frozen=True, slots=True)
class TemplateSource:
    """One part of one template, as written in its file."""

    file: str
    name: str  # "sms-reminder.es.text": the table and key in the file
    text: str
    first_line: int | None  # the file's line holding the template's line 1, when found

    @property
    def template(self) -> str:
        """The template's name without the part: "sms-reminder.es"."""
        return self.name.rsplit(".", 1)[0]

    @property
    def part(self) -> str:
        """ "text", "subject" or "html"."""
        return self.name.rsplit(".", 1)[1]

    def problem(self, template_line: int | None, reason: str) -> TemplateProblem:
        """A problem at a line of this template, given as a line of its file when we know it."""
        line = template_line
        if template_line is not None and self.first_line is not None:
            line = self.first_line + template_line - 1
        return TemplateProblem(self.file, self.template, line, reason)


Sources = dict[tuple[str, str], dict[str, TemplateSource]]


def read_templates(file: str, text: str, problems: list[TemplateProblem]) -> Sources:
    """The templates in one TOML file by (kind, language); what is wrong goes to `problems`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found[1]) if found else None
        problems.append(TemplateProblem(file, None, line, f"not valid TOML: {exc}"))
        return {}
    lines = _value_lines(text)
    read: Sources = {}
    for kind, languages in data.items():
        at = _first_line(lines, (kind,))
        if kind not in KINDS:
            known = ", ".join(KINDS)
            problems.append(TemplateProblem(file, kind, at, f"unknown kind (known: {known})"))
        elif not isinstance(languages, dict):
            problems.append(TemplateProblem(file, kind, at, "must be a table: [kind.language]"))
        else:
            for language, parts in languages.items():
                name = f"{kind}.{language}"
                at = _first_line(lines, (kind, language))
                if shape := _shape_problem(kind, language, parts):
                    problems.append(TemplateProblem(file, name, at, shape))
                    continue
                read[(kind, language)] = {
                    part: TemplateSource(
                        file, f"{name}.{part}", parts[part], lines.get((kind, language, part))
                    )
                    for part in KINDS[kind]
                }
    return read


def _shape_problem(kind: str, language: str, parts: Any) -> str | None:
    wanted = KINDS[kind]
    if language not in LANGUAGES:
        return f"unknown language (known: {', '.join(LANGUAGES)})"
    if not isinstance(parts, dict):
        return f"must be a table of texts ({', '.join(wanted)})"
    if extra := sorted(set(parts) - set(wanted)):
        return f"unknown part {', '.join(extra)} ({kind} has: {', '.join(wanted)})"
    if missing := [p for p in wanted if p not in parts]:
        return f"missing {', '.join(missing)} ({kind} has: {', '.join(wanted)})"
    if not_text := [p for p in wanted if not isinstance(parts[p], str)]:
        return f"{', '.join(not_text)} must be text in quotes"
    return None


_TABLE = re.compile(r"^\s*\[([^\[\]]+)\]\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"' .]+?)\s*=\s*(.*)$")


def _value_lines(text: str) -> dict[tuple[str, ...], int]:
    """Key path -> the file line of its value's first line; a table -> its header's line.

    Enough of TOML for a templates file: tables, dotted keys, one-line and multi-line strings
    (TOML drops a newline right after the opening quotes, so the template starts a line later).
    Where this cannot tell, problems give the template's own line instead.
    """
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    closing: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if closing is not None:  # inside a multi-line string: template text, not TOML
            closing = None if closing in line else closing
            continue
        if header := _TABLE.match(line):
            table = _dotted(header[1])
            found.setdefault(table, number)
        elif key := _KEY.match(line):
            path = table + _dotted(key[1])
            value = key[2]
            delimiter = value[:3] if value[:3] in ('"""', "'''") else None
            rest = value[3:] if delimiter else value
            starts_next = delimiter is not None and not rest.strip()
            found.setdefault(path, number + 1 if starts_next else number)
            if delimiter is not None and delimiter not in rest:
                closing = delimiter
    return found


def _dotted(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.split("."))


def _first_line(lines: Mapping[tuple[str, ...], int], prefix: tuple[str, ...]) -> int | None:
    at = [n for path, n in lines.items() if path[: len(prefix)] == prefix]
    return min(at) if at else None
