"""Compiling and rendering templates that practice staff wrote, safely.

Jinja's immutable sandbox keeps a template away from Python internals (no `__class__`, no
changing lists it is given); `StrictUndefined` makes a misspelt name an error, and printing a
value that is empty (None) is an error too, so "Hi None," or "Hi ," never reaches a patient:
the samples rendered at load time find it first. Every error is reported at the file's line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from clinicflow.automations.reminders.template_files import (
    Sources,
    TemplateError,
    TemplateProblem,
    TemplateSource,
)

# A line holding only `{% %}` (or `{# #}`) tags disappears from the message; every other line
# stays a line. Jinja's own trim_blocks would also eat the newline after a line that *ends* in
# `{% endif %}`, joining two lines of a text, so tag-only lines are marked and dropped after.
_TAG_ONLY = re.compile(r"^[ \t]*(?:(?:\{%.*?%\}|\{#.*?#\})[ \t]*)+$")
_TAG_LINE = "\x00"


class _EmptyValueError(ValueError):
    """A template printed a value that was empty (None)."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """One part of one template, ready to render."""

    source: TemplateSource
    template: jinja2.Template

    def render(self, values: Mapping[str, object]) -> str:
        """The text for these values, tidied; TemplateError at the file's line if it fails."""
        try:
            out = self.template.render(values)
        except Exception as exc:  # whatever a template does wrong is a problem to show
            problem = self.source.problem(_template_line(exc, self.source.name), _reason(exc))
            raise TemplateError([problem]) from exc
        return _tidy(out)


def compile_templates(
    sources: Sources,
    known: Collection[str],
    problems: list[TemplateProblem],
    *,
    plain: Mapping[type, frozenset[str]] | None = None,
) -> dict[tuple[str, str], dict[str, Compiled]]:
    """Each template compiled in one sandbox; syntax errors and names outside `known` go to
    `problems`, and a template with any of them is left out.

    `plain`: value types of our own whose listed fields are plain data, read without the
    sandbox's per-access checks (they cost a third of a render, thousands of times a run).
    """
    by_name = {s.name: s for parts in sources.values() for s in parts.values()}
    env = _environment({name: _mark_tag_lines(s.text) for name, s in by_name.items()}, plain or {})
    compiled: dict[tuple[str, str], dict[str, Compiled]] = {}
    for key, parts in sources.items():
        found: list[TemplateProblem] = []
        ok: dict[str, Compiled] = {}
        for part, source in parts.items():
            try:
                ok[part] = Compiled(source, env.get_template(source.name))
            except jinja2.TemplateSyntaxError as exc:
                found.append(source.problem(exc.lineno, exc.message or "syntax error"))
                continue
            found += _unknown_names(source, env, known)
        problems += found
        if not found:
            compiled[key] = ok
    return compiled


def _unknown_names(
    source: TemplateSource, env: jinja2.Environment, known: Collection[str]
) -> list[TemplateProblem]:
    """Names no message provides, found without rendering: a branch no sample takes counts."""
    ast = env.parse(_mark_tag_lines(source.text))
    problems = []
    for name in sorted(meta.find_undeclared_variables(ast) - set(known)):
        line = next(n.lineno for n in ast.find_all(nodes.Name) if n.name == name)
        reason = f"unknown placeholder {name!r} (known: {', '.join(sorted(known))})"
        problems.append(source.problem(line, reason))
    return problems


def _reason(exc: Exception) -> str:
    if isinstance(exc, _EmptyValueError):
        return "prints a value that can be empty: put it inside {% if ... %}...{% endif %}"
    if isinstance(exc, jinja2.UndefinedError):
        return f"unknown placeholder or field: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _template_line(exc: Exception, name: str) -> int | None:
    """The template line the error happened at: Jinja rewrites the traceback so that frames of
    a template carry its name as their file name and the template's line numbers."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == name:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with a fast path for the plain fields of our own value types."""

    def __init__(self, plain: Mapping[type, frozenset[str]], **options: Any) -> None:
        super().__init__(**options)
        self._plain = dict(plain)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Our value types' declared fields are data; anything else gets the full check."""
        fields = self._plain.get(type(obj))
        if fields is not None and attr in fields:
            return True
        return bool(super().is_safe_attribute(obj, attr, value))


def _environment(
    sources: Mapping[str, str], plain: Mapping[type, frozenset[str]]
) -> ImmutableSandboxedEnvironment:
    return _Sandbox(
        plain,
        loader=_Loader(sources),
        undefined=jinja2.StrictUndefined,
        autoescape=lambda name: name is not None and name.endswith(".html"),
        finalize=_refuse_empty,
    )


class _Loader(jinja2.BaseLoader):
    """Templates by name; the name doubles as the file name Jinja gives their traceback frames."""

    def __init__(self, sources: Mapping[str, str]):
        self._sources = sources

    def get_source(
        self,
        environment: jinja2.Environment,  # noqa: ARG002  (Jinja's loader signature)
        template: str,
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template not in self._sources:
            raise jinja2.TemplateNotFound(template)
        return self._sources[template], template, lambda: True


def _refuse_empty(value: object) -> object:
    if value is None:
        raise _EmptyValueError
    return value


def _mark_tag_lines(text: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line + _TAG_LINE if _TAG_ONLY.match(line) else line for line in lines)


def _tidy(out: str) -> str:
    """Drop tag-only lines and trailing spaces; keep at most one blank line in a row."""
    kept: list[str] = []
    for line in out.split("\n"):
        if _TAG_LINE in line:
            if line.strip() == _TAG_LINE:
                continue
            line = line.replace(_TAG_LINE, "")
        line = line.rstrip()
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip("\n")
