"""`clinicflow reminders templates export|check|preview`: the practice's reminder texts, edited
in a file and seen before any patient gets them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from clinicflow.automations.reminders.templates import (
    KINDS,
    LANGUAGES,
    TemplateError,
    Templates,
    default_templates_text,
    render_samples,
    sample_context,
    sms_warnings,
    templates_path,
)
from clinicflow.cli.runtime import Runtime
from clinicflow.errors import InputError

app = typer.Typer(help="Appointment reminders.", no_args_is_help=True)
templates_app = typer.Typer(
    help="The reminder texts patients receive: export to edit, check, preview.",
    no_args_is_help=True,
)
app.add_typer(templates_app, name="templates")

JsonOption = Annotated[bool, typer.Option("--json", help="Print plain JSON on stdout")]


@templates_app.command("export")
def export(
    force: Annotated[
        bool, typer.Option("--force", help="Replace the practice's file with the defaults")
    ] = False,
) -> None:
    """Write the default templates to the data directory for the practice to edit."""
    rt = Runtime.load()
    path = templates_path(rt.settings)
    if path.exists() and not force:
        raise InputError(
            "the practice's templates are already there: edit them, or add --force to replace "
            "them with the defaults",
            where=str(path),
        )
    _write_atomically(path, default_templates_text())
    rt.console.print(
        f"wrote the default templates to {path}; edit them, then run "
        "`clinicflow reminders templates check`",
        markup=False,
        highlight=False,
    )


@templates_app.command("check")
def check(json_output: JsonOption = False) -> None:
    """Render every template, defaults and the practice's, against sample visits.

    Exit 1 with one `FILE: template X: line N: reason` line per problem; SMS lengths are warnings.
    """
    rt = Runtime.load()
    path = templates_path(rt.settings)
    templates = _load_or_exit(rt, path, json_output)
    samples = render_samples(templates)
    warnings = [
        f"{templates.source_of(s.kind, s.language)}: template {s.kind}.{s.language}: "
        f"{warning} ({s.case})"
        for s in samples
        for warning in s.warnings
    ]
    if json_output:
        rt.out(
            {
                "ok": True,
                "file": str(path) if path.exists() else None,
                "templates": [
                    {
                        "template": f"{kind}.{language}",
                        "source": templates.source_of(kind, language),
                    }
                    for kind, language in templates.templates()
                ],
                "problems": [],
                "warnings": warnings,
            }
        )
        return
    table = Table("template", "from", "SMS encoding", "segments")
    for kind, language in templates.templates():
        counts = [
            s.rendered.segments
            for s in samples
            if (s.kind, s.language) == (kind, language) and s.rendered.segments
        ]
        source = "practice" if templates.source_of(kind, language) == str(path) else "default"
        encodings = " / ".join(sorted({str(c.encoding) for c in counts})) or "(e-mail)"
        segments = {c.segments for c in counts}
        span = (
            f"{min(segments)}-{max(segments)}" if len(segments) > 1 else "".join(map(str, segments))
        )
        table.add_row(f"{kind}.{language}", source, encodings, span)
    rt.console.print(table)
    for warning in warnings:
        rt.console.print(Text(f"warning: {warning}", style="yellow"))
    where = str(path) if path.exists() else "defaults only: no practice file"
    rt.console.print(f"templates OK ({where})", markup=False, highlight=False)


@templates_app.command("preview")
def preview(
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(KINDS)}")] = "sms-reminder",
    lang: Annotated[str, typer.Option(help=f"One of: {', '.join(LANGUAGES)}")] = "en",
    visits: Annotated[int, typer.Option(min=1, max=10, help="Visits the message lists")] = 1,
    asks_reply: Annotated[
        bool, typer.Option("--asks-reply/--no-asks-reply", help="The 2-day SMS asks C/X/R")
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Show a template rendered for a fictional patient (no real PHI), with its SMS segments."""
    if kind not in KINDS:
        raise typer.BadParameter(f"{kind!r} is not one of: {', '.join(KINDS)}", param_hint="--kind")
    if lang not in LANGUAGES:
        raise typer.BadParameter(
            f"{lang!r} is not one of: {', '.join(LANGUAGES)}", param_hint="--lang"
        )
    rt = Runtime.load()
    templates = _load_or_exit(rt, templates_path(rt.settings), json_output)
    rendered = templates.render(kind, sample_context(lang, visits, asks_reply))
    segments = rendered.segments
    warnings = sms_warnings(segments) if segments else []
    if json_output:
        rt.out(
            {
                "template": f"{kind}.{lang}",
                "source": templates.source_of(kind, lang),
                "visits": visits,
                "asks_reply": asks_reply,
                "subject": rendered.subject,
                "text": rendered.text,
                "html": rendered.html,
                "sms": None
                if segments is None
                else {
                    "encoding": str(segments.encoding),
                    "units": segments.units,
                    "segments": segments.segments,
                    "non_gsm": segments.non_gsm,
                },
                "warnings": warnings,
            }
        )
        return
    source = templates.source_of(kind, lang)
    rt.console.print(f"{kind}.{lang}, from {source}", markup=False, highlight=False)
    parts = {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}
    for part, shown in parts.items():
        if shown is not None:
            rt.console.rule(part)  # no panel: a panel would cut long lines at the border
            rt.console.print(Text(shown))
    rt.console.rule()
    if segments is not None:
        rt.console.print(
            f"SMS: {segments.encoding}, {segments.units} characters, "
            f"{segments.segments} segment{'s' if segments.segments != 1 else ''}",
            markup=False,
            highlight=False,
        )
    for warning in warnings:
        rt.console.print(Text(f"warning: {warning}", style="yellow"))


def _load_or_exit(rt: Runtime, path: Path, json_output: bool) -> Templates:
    """The templates, or each problem on its own line and exit code 1."""
    try:
        return Templates.load(path)
    except TemplateError as exc:
        if json_output:
            rt.out({"ok": False, "problems": [str(p) for p in exc.problems], "warnings": []})
        else:
            for problem in exc.problems:
                rt.console.print(Text(str(problem), style="red"))
        raise typer.Exit(1) from exc


def _write_atomically(path: Path, text: str) -> None:
    """A worker reading the file mid-write must see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".reminders-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
