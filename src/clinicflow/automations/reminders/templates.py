"""Reminder texts: templates a practice edits without code, checked before any patient sees one.

The package ships `default_templates.toml` (English and Spanish). A practice's own file
(`templates_path`) replaces whole templates, one `[kind.language]` table at a time, and keeps
the defaults for the rest. Loading renders every template against fictional sample visits
(`SAMPLE_CASES`), so a misspelt placeholder, a syntax error or an empty value printed without
its `{% if %}` fails `clinicflow reminders templates check` with file, template and line, not a
reminder at 7 a.m. on a Monday.

Templates see prepared values (`_values`), never our objects: dates are already words in the
patient's language (`dates`), and the reason for a visit is not there to print.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from clinicflow.automations.reminders.dates import day_text, time_text, when_long_text, when_text
from clinicflow.automations.reminders.policy import Touchpoint
from clinicflow.automations.reminders.sandbox import Compiled, compile_templates
from clinicflow.automations.reminders.template_files import (
    KINDS,
    LANGUAGES,
    TemplateError,
    TemplateProblem,
    read_templates,
)
from clinicflow.channels.sms_segments import Encoding, SegmentCount, count_segments
from clinicflow.engine.payloads import MessageChannel
from clinicflow.settings import Settings

__all__ = [
    "KINDS",
    "LANGUAGES",
    "ReminderContext",
    "Rendered",
    "SampleRender",
    "TemplateError",
    "TemplateProblem",
    "Templates",
    "VisitLine",
    "default_templates_text",
    "load_templates",
    "render_reminder",
    "render_samples",
    "sample_context",
    "sms_warnings",
    "templates_path",
]

DEFAULT_LANGUAGE = "en"
DEFAULTS_FILE = "default_templates.toml"
# Past this, a text costs more than a practice expects and may arrive in pieces.
MAX_SEGMENTS = 3
# What a template may print; `dates` words the visit times.
PLACEHOLDERS = frozenset(
    {
        "practice_name",
        "practice_phone",
        "first_name",
        "asks_reply",
        "visit_url",
        "claim_url",
        "unsubscribe_url",
        "visits",
        "language",
    }
)


@dataclass(frozen=True, slots=True)
class VisitLine:
    """One visit listed in a reminder: no reason for the visit, ever."""

    start_local: datetime  # aware, in the patient's zone
    practitioner: str | None  # display name, e.g. "Dr. Ana Ruiz"
    location: str | None  # place name (and address line if known)
    # Whose visit, set when one message lists visits of several people (a family's phone).
    patient_first_name: str | None = None


@dataclass(frozen=True, slots=True)
class ReminderContext:
    """All a reminder may say. Several visits for one phone or address go in one message."""

    language: str  # BCP-47 ("en", "es-MX"); a language we have no templates for -> English
    patient_first_name: str | None
    practice_name: str
    practice_phone: str | None
    visits: Sequence[VisitLine]
    asks_reply: bool
    visit_url: str | None = None  # e-mail: the signed confirm/cancel page
    unsubscribe_url: str | None = None  # e-mail
    claim_url: str | None = None  # a waitlist offer: the signed page that takes the slot


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message ready to send; `segments` for SMS only."""

    subject: str | None
    text: str
    html: str | None
    segments: SegmentCount | None


@dataclass(frozen=True, slots=True)
class VisitView:
    """A visit as a template sees it: words, not datetimes."""

    when: str
    when_long: str
    day: str
    time: str
    practitioner: str | None
    location: str | None
    first_name: str | None


_PLAIN: dict[type, frozenset[str]] = {VisitView: frozenset(f.name for f in fields(VisitView))}


class Templates:
    """A loaded and checked set of templates, by (kind, language)."""

    def __init__(self, compiled: dict[tuple[str, str], dict[str, Compiled]]):
        self._compiled = compiled

    @classmethod
    def load(cls, override_path: Path | None) -> Templates:
        """The package defaults, each replaced by the practice's template of the same kind and
        language if `override_path` exists; TemplateError lists every problem found."""
        problems: list[TemplateProblem] = []
        default = str(resources.files(__package__).joinpath(DEFAULTS_FILE))
        sources = read_templates(default, default_templates_text(), problems)
        if override_path is not None and override_path.exists():
            text = override_path.read_text(encoding="utf-8")
            sources |= read_templates(str(override_path), text, problems)
        compiled = compile_templates(sources, PLACEHOLDERS, problems, plain=_PLAIN)
        templates = cls(compiled)
        problems += templates._sample_problems()
        if problems:
            raise TemplateError(problems)
        return templates

    def render(self, kind: str, ctx: ReminderContext) -> Rendered:
        """The message of this kind for `ctx`, in its language."""
        parts = self._parts(kind, language_of(ctx.language))
        values = _values(ctx, language_of(ctx.language))
        text = parts["text"].render(values)
        if "html" not in parts:
            return Rendered(None, text, None, count_segments(text))
        subject = " ".join(parts["subject"].render(values).split())  # a header: one line, always
        return Rendered(subject, text, parts["html"].render(values), None)

    def templates(self) -> list[tuple[str, str]]:
        """Every (kind, language) this set has."""
        return sorted(self._compiled)

    def source_of(self, kind: str, language: str) -> str:
        """The file this template came from: the package defaults or the practice's file."""
        return self._parts(kind, language)["text"].source.file

    def _parts(self, kind: str, language: str) -> dict[str, Compiled]:
        parts = self._compiled.get((kind, language))
        if parts is None:
            reason = f"no such template (kinds: {', '.join(KINDS)})"
            raise TemplateError([TemplateProblem("reminder templates", kind, None, reason)])
        return parts

    def _sample_problems(self) -> list[TemplateProblem]:
        """Each part rendered for every sample case; its first failure reported."""
        problems: list[TemplateProblem] = []
        for (_kind, language), parts in self._compiled.items():
            for part in parts.values():
                for case in SAMPLE_CASES:
                    try:
                        out = part.render(_values(case.context(language), language))
                    except TemplateError as exc:
                        problems += [
                            replace(p, reason=f"{p.reason} ({case})") for p in exc.problems
                        ]
                        break
                    if not out and part.source.part != "html":
                        problems.append(part.source.problem(None, f"renders nothing ({case})"))
                        break
        return problems


def default_templates_text() -> str:
    """The package's templates file, comments and all: what `export` gives a practice to edit."""
    return resources.files(__package__).joinpath(DEFAULTS_FILE).read_text(encoding="utf-8")


def language_of(tag: str) -> str:
    """The templates' language for a BCP-47 tag ("es-MX" -> "es"); English if we have none."""
    prefix = tag.replace("_", "-").split("-")[0].lower()
    return prefix if prefix in LANGUAGES else DEFAULT_LANGUAGE


def templates_path(settings: Settings) -> Path:
    """Where the practice's own templates live."""
    return settings.data_dir / "templates" / "reminders.toml"


def load_templates(settings: Settings) -> Templates:
    """The practice's templates, read again only when its file changes: a worker picks up an
    edit without a restart."""
    path = templates_path(settings)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return _load_cached(path, None)
    return _load_cached(path, (stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _load_cached(path: Path, stamp: tuple[int, int] | None) -> Templates:
    return Templates.load(path if stamp is not None else None)


def render_reminder(templates: Templates, touchpoint: Touchpoint, ctx: ReminderContext) -> Rendered:
    """The reminder for this touchpoint, by SMS or e-mail as its channel says; it asks for a
    reply only when the touchpoint and the context both do."""
    kind = "sms-reminder" if touchpoint.channel is MessageChannel.SMS else "email-reminder"
    return templates.render(kind, replace(ctx, asks_reply=ctx.asks_reply and touchpoint.asks_reply))


def sms_warnings(segments: SegmentCount) -> list[str]:
    """What a practice should know about a text's length before every patient gets it."""
    warnings = []
    if segments.encoding is Encoding.UCS2:
        warnings.append(
            f"sent as UCS-2, 70 characters a segment instead of 160, because of "
            f"{' '.join(segments.non_gsm)}"
        )
    if segments.segments > MAX_SEGMENTS:
        warnings.append(f"{segments.segments} segments: more than {MAX_SEGMENTS} costs more")
    return warnings


@dataclass(frozen=True, slots=True)
class SampleRender:
    """A template rendered for one sample case, with what its length costs (SMS)."""

    kind: str
    language: str
    case: str
    rendered: Rendered
    warnings: tuple[str, ...]


def render_samples(templates: Templates) -> list[SampleRender]:
    """Every template rendered for every sample case, for `check` to report segments."""
    renders = []
    for kind, language in templates.templates():
        for case in SAMPLE_CASES:
            rendered = templates.render(kind, case.context(language))
            warnings = sms_warnings(rendered.segments) if rendered.segments else []
            renders.append(SampleRender(kind, language, str(case), rendered, tuple(warnings)))
    return renders


def _values(ctx: ReminderContext, language: str) -> dict[str, object]:
    return {
        "practice_name": ctx.practice_name,
        "practice_phone": ctx.practice_phone,
        "first_name": ctx.patient_first_name,
        "asks_reply": ctx.asks_reply,
        "visit_url": ctx.visit_url,
        "claim_url": ctx.claim_url,
        "unsubscribe_url": ctx.unsubscribe_url,
        "language": language,
        "visits": [
            VisitView(
                when=when_text(v.start_local, language),
                when_long=when_long_text(v.start_local, language),
                day=day_text(v.start_local, language),
                time=time_text(v.start_local, language),
                practitioner=v.practitioner,
                location=v.location,
                first_name=v.patient_first_name,
            )
            for v in ctx.visits
        ],
    }


# --- samples: a fictional patient, so checks and previews show no real PHI --------------------

SAMPLE_ZONE = ZoneInfo("America/New_York")
SAMPLE_START = datetime(2026, 12, 1, 14, 30, tzinfo=SAMPLE_ZONE)  # a Tuesday afternoon
SAMPLE_NAMES = {"en": ("Alex", "Jamie"), "es": ("Rosa", "Mateo")}
SAMPLE_PRACTITIONERS = ("Dr. Ana Ruiz", "Dr. Sam Lee")


@dataclass(frozen=True, slots=True)
class SampleCase:
    """A shape of message every template must handle."""

    visits: int = 1
    asks_reply: bool = True
    family: bool = False  # visits of several people on one phone: no one first name
    sparse: bool = False  # every value that may be empty is empty

    def context(self, language: str) -> ReminderContext:
        """This case for a fictional patient of a fictional practice."""
        return sample_context(language, self.visits, self.asks_reply, self.family, self.sparse)

    def __str__(self) -> str:
        said = [f"{self.visits} visit{'s' if self.visits > 1 else ''}"]
        said += ["for a family"] * self.family + ["asks a reply"] * self.asks_reply
        said += ["no name, practitioner, place, phone or links"] * self.sparse
        return "sample: " + ", ".join(said)


SAMPLE_CASES = (
    SampleCase(),
    SampleCase(visits=2),
    SampleCase(asks_reply=False),
    SampleCase(visits=2, asks_reply=False, family=True),
    SampleCase(asks_reply=False, sparse=True),
)


def sample_context(
    language: str,
    visits: int = 1,
    asks_reply: bool = True,
    family: bool = False,
    sparse: bool = False,
) -> ReminderContext:
    """A reminder for a fictional patient (555-01xx numbers are reserved for fiction)."""
    names = SAMPLE_NAMES[language_of(language)]
    lines = [
        VisitLine(
            start_local=SAMPLE_START + timedelta(minutes=45 * i),
            practitioner=None if sparse else SAMPLE_PRACTITIONERS[i % 2],
            location=None if sparse else "Main Street Clinic, 12 Main St",
            patient_first_name=names[i % 2] if family else None,
        )
        for i in range(visits)
    ]
    return ReminderContext(
        language=language,
        patient_first_name=None if family or sparse else names[0],
        practice_name="Riverside Family Medicine",
        practice_phone=None if sparse else "(555) 010-0123",
        visits=lines,
        asks_reply=asks_reply,
        visit_url=None if sparse else "https://reminders.example.org/v/4f9c2a7e1b3d5f60",
        unsubscribe_url=None if sparse else "https://reminders.example.org/u/4f9c2a7e1b3d5f60",
        # As long as a real one: an offer id, a contact digest, a timestamp and a signature.
        claim_url=None if sparse else "https://reminders.example.org/claim/" + "eyJvIjo" * 13,
    )
