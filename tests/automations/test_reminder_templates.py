"""Reminder templates: what a patient reads, in English and Spanish, and what a practice that
edits the texts is told when a template is wrong (file, template and line)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinicflow.automations.reminders.dates import when_long_text, when_text
from clinicflow.automations.reminders.policy import DEFAULT_TOUCHPOINTS
from clinicflow.automations.reminders.templates import (
    ReminderContext,
    TemplateError,
    Templates,
    VisitLine,
    load_templates,
    render_reminder,
    render_samples,
    sms_warnings,
    templates_path,
)
from clinicflow.channels.sms_segments import Encoding
from clinicflow.settings import Settings

CHICAGO = ZoneInfo("America/Chicago")
EMAIL_7D, SMS_2D, SMS_2H = DEFAULT_TOUCHPOINTS
VISITS = (
    VisitLine(datetime(2026, 3, 3, 9, 0, tzinfo=CHICAGO), "Dr. Ana Ruiz", "North Clinic"),
    VisitLine(datetime(2026, 3, 3, 13, 45, tzinfo=CHICAGO), "Dr. Sam Lee", "South Clinic"),
    VisitLine(datetime(2026, 3, 4, 16, 15, tzinfo=CHICAGO), None, None),
)
WHEN = {
    "en": ("Tue, Mar 3 at 9:00 AM", "Tue, Mar 3 at 1:45 PM", "Wed, Mar 4 at 4:15 PM"),
    "es": ("mar 3 mar a las 9:00", "mar 3 mar a las 13:45", "mié 4 mar a las 16:15"),
}
REPLY_ASK = {
    "en": "Reply C to confirm, X to cancel, R to reschedule.",
    "es": "Responda C para confirmar, X para cancelar, R para cambiar la cita.",
}
FOOTER = {"en": "Reply STOP to opt out.", "es": "Responda STOP para darse de baja."}


def context(
    language: str = "en",
    visits: int | Sequence[VisitLine] = 1,
    *,
    patient_first_name: str | None = "Dana",
    asks_reply: bool = True,
) -> ReminderContext:
    """A reminder from a fictional practice; `visits` is a count of VISITS or the visits."""
    return ReminderContext(
        language=language,
        patient_first_name=patient_first_name,
        practice_name="Lakeside Pediatrics",
        practice_phone="(555) 010-0199",
        visits=VISITS[:visits] if isinstance(visits, int) else visits,
        asks_reply=asks_reply,
        visit_url="https://lakeside.example/v/abc?x=1&y=2",
        unsubscribe_url="https://lakeside.example/u/abc",
    )


@pytest.fixture(scope="module")
def defaults() -> Templates:
    return Templates.load(None)


def practice_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reminders.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(TemplateError) as raised:
        Templates.load(path)
    return [str(p) for p in raised.value.problems]


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("visits", [1, 3])
def test_an_sms_reminder_lists_every_visit_with_its_time_practitioner_and_place(
    defaults: Templates, language: str, visits: int
) -> None:
    text = defaults.render("sms-reminder", context(language, visits)).text
    assert text.startswith("Lakeside Pediatrics: ")
    assert "Dana" in text
    for visit, when in zip(VISITS[:visits], WHEN[language], strict=False):
        line = next(line for line in text.splitlines() if when in line)
        assert visit.practitioner is None or visit.practitioner in line
        assert visit.location is None or visit.location in line
    assert sum(line.startswith("- ") for line in text.splitlines()) == visits
    assert text.endswith(FOOTER[language])


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_reply_letters_are_asked_only_by_the_touchpoint_that_asks_for_a_reply(
    defaults: Templates, language: str
) -> None:
    asked = render_reminder(defaults, SMS_2D, context(language)).text
    same_day = render_reminder(defaults, SMS_2H, context(language)).text
    assert REPLY_ASK[language] in asked
    assert " C " not in same_day
    assert "(555) 010-0199" in same_day  # no reply asked: the number to call instead
    # The context may also say no (the letters mean nothing on a number that cannot reply).
    told_not_to = render_reminder(defaults, SMS_2D, context(language, asks_reply=False)).text
    assert REPLY_ASK[language] not in told_not_to


def test_a_family_sharing_a_phone_gets_one_message_naming_whose_visit_is_when(
    defaults: Templates,
) -> None:
    visits = [
        VisitLine(VISITS[0].start_local, "Dr. Ana Ruiz", None, patient_first_name="Leo"),
        VisitLine(VISITS[1].start_local, "Dr. Ana Ruiz", None, patient_first_name="Mia"),
    ]
    text = defaults.render("sms-reminder", context(patient_first_name=None, visits=visits)).text
    assert "- Tue, Mar 3 at 9:00 AM for Leo with Dr. Ana Ruiz" in text
    assert "- Tue, Mar 3 at 1:45 PM for Mia with Dr. Ana Ruiz" in text
    assert "Reminder of your appointments:" in text


@pytest.mark.parametrize("language", ["en", "es"])
def test_an_email_reminder_has_a_subject_text_html_and_both_links(
    defaults: Templates, language: str
) -> None:
    rendered = render_reminder(defaults, EMAIL_7D, context(language, visits=2))
    assert rendered.segments is None
    assert rendered.subject is not None
    assert "Lakeside Pediatrics" in rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.html is not None
    for part in (rendered.text, rendered.html):
        assert when_long_text(VISITS[0].start_local, language) in part
        assert when_long_text(VISITS[1].start_local, language) in part
        assert "https://lakeside.example/u/abc" in part
    assert "https://lakeside.example/v/abc?x=1&y=2" in rendered.text
    assert 'href="https://lakeside.example/v/abc?x=1&amp;y=2"' in rendered.html
    assert f'<html lang="{language}">' in rendered.html


def test_the_html_part_escapes_every_value_and_the_text_part_keeps_it_as_written(
    defaults: Templates,
) -> None:
    visit = VisitLine(VISITS[0].start_local, "<b>Dr. Bold</b>", "Smith & Sons <Clinic>")
    rendered = defaults.render(
        "email-reminder",
        context(visits=[visit], patient_first_name="<script>alert(1)</script>"),
    )
    assert rendered.html is not None
    assert "<b>" not in rendered.html
    assert "<script>" not in rendered.html
    assert "&lt;b&gt;Dr. Bold&lt;/b&gt;" in rendered.html
    assert "Smith &amp; Sons &lt;Clinic&gt;" in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<b>Dr. Bold</b>" in rendered.text


def test_a_language_tag_picks_its_templates_and_an_unknown_one_falls_back_to_english(
    defaults: Templates,
) -> None:
    assert REPLY_ASK["es"] in defaults.render("sms-reminder", context("es-MX")).text
    assert REPLY_ASK["en"] in defaults.render("sms-reminder", context("fr")).text
    assert REPLY_ASK["en"] in defaults.render("sms-reminder", context("EN_us")).text


@pytest.mark.parametrize(
    ("at", "language", "expected"),
    [
        (datetime(2026, 3, 7, 0, 5, tzinfo=CHICAGO), "en", "Sat, Mar 7 at 12:05 AM"),
        (datetime(2026, 3, 7, 12, 0, tzinfo=CHICAGO), "en", "Sat, Mar 7 at 12:00 PM"),
        (datetime(2026, 3, 7, 1, 30, tzinfo=CHICAGO), "es", "sáb 7 mar a la 1:30"),
        (datetime(2026, 9, 13, 13, 0, tzinfo=CHICAGO), "es", "dom 13 sept a las 13:00"),
    ],
)
def test_times_read_as_each_language_writes_them(
    at: datetime, language: str, expected: str
) -> None:
    assert when_text(at, language) == expected


def test_the_long_form_names_the_day_month_and_year() -> None:
    at = datetime(2026, 12, 1, 14, 30, tzinfo=CHICAGO)
    assert when_long_text(at, "en") == "Tuesday, December 1, 2026 at 2:30 PM"
    assert when_long_text(at, "es") == "martes 1 de diciembre de 2026 a las 14:30"


def test_sms_renders_report_segments_and_ucs2_when_a_name_needs_it(defaults: Templates) -> None:
    plain = defaults.render("sms-reminder", context("es"))
    assert plain.segments is not None
    assert plain.segments.encoding is Encoding.GSM7  # the Spanish wording itself stays GSM-7
    assert sms_warnings(plain.segments) == []
    accented = defaults.render("sms-reminder", context("es", patient_first_name="Lucía"))
    assert accented.segments is not None
    assert accented.segments.encoding is Encoding.UCS2
    assert accented.segments.non_gsm == "í"
    assert accented.segments.segments > plain.segments.segments
    assert any("UCS-2" in w and "í" in w for w in sms_warnings(accented.segments))


def test_a_text_longer_than_three_segments_is_warned_about_not_refused(
    defaults: Templates,
) -> None:
    many = [VisitLine(VISITS[0].start_local, "Dr. Ana Ruiz", "North Clinic")] * 6
    rendered = defaults.render("sms-reminder", context(visits=many))
    assert rendered.segments is not None
    assert rendered.segments.segments > 3
    assert f"{rendered.segments.segments} segments: more than 3 costs more" in sms_warnings(
        rendered.segments
    )


def test_the_default_samples_render_every_template_within_three_gsm_segments(
    defaults: Templates,
) -> None:
    samples = render_samples(defaults)
    kinds = {(s.kind, s.language) for s in samples}
    assert len(kinds) == 20  # ten kinds (five reminder, five waitlist), two languages
    sms = [s for s in samples if s.rendered.segments is not None]
    assert sms
    assert all(s.warnings == () for s in sms), [(s.kind, s.language, s.warnings) for s in sms]


def test_a_practice_override_replaces_one_template_and_keeps_the_rest(tmp_path: Path) -> None:
    path = practice_file(
        tmp_path,
        "[sms-reminder.es]\n"
        "text = '''\n"
        "{{ practice_name }}: cita {{ visits[0].when }}. Responda STOP para darse de baja.\n"
        "'''\n",
    )
    templates = Templates.load(path)
    spanish = templates.render("sms-reminder", context("es")).text
    assert spanish == (
        "Lakeside Pediatrics: cita mar 3 mar a las 9:00. Responda STOP para darse de baja."
    )
    assert templates.source_of("sms-reminder", "es") == str(path)
    assert REPLY_ASK["en"] in templates.render("sms-reminder", context("en")).text
    assert templates.source_of("sms-reminder", "en").endswith("default_templates.toml")
    assert templates.source_of("sms-cancelled", "es").endswith("default_templates.toml")


def test_lines_holding_only_tags_disappear_and_every_other_line_stays_a_line(
    tmp_path: Path,
) -> None:
    path = practice_file(
        tmp_path,
        "[sms-confirmed.en]\n"
        "text = '''\n"
        "{% if first_name %}\n"
        "Thanks {{ first_name }}.\n"
        "{% endif %}\n"
        "{% for v in visits %}\n"
        "  {# one line a visit #}\n"
        "{{ v.time }}{% if v.location %} at {{ v.location }}{% endif %}\n"
        "{% endfor %}\n"
        "\n"
        "\n"
        "{{ practice_name }}\n"
        "'''\n",
    )
    text = Templates.load(path).render("sms-confirmed", context(visits=2)).text
    assert text == (
        "Thanks Dana.\n9:00 AM at North Clinic\n1:45 PM at South Clinic\n\nLakeside Pediatrics"
    )


def test_an_unknown_placeholder_is_reported_with_the_file_template_and_line(
    tmp_path: Path,
) -> None:
    path = practice_file(
        tmp_path,
        "# our wording\n"
        "[sms-reminder.es]\n"
        "text = '''\n"
        "{{ practice_name }}:\n"
        "Hola {{ fist_name }}\n"
        "'''\n",
    )
    assert problems_of(path) == [
        f"{path}: template sms-reminder.es: line 5: unknown placeholder 'fist_name' (known: "
        "asks_reply, claim_url, first_name, language, practice_name, practice_phone, "
        "unsubscribe_url, "
        "visit_url, visits)"
    ]


def test_a_placeholder_in_a_branch_no_sample_takes_is_still_found(tmp_path: Path) -> None:
    path = practice_file(
        tmp_path,
        '[sms-confirmed.en]\ntext = "{{ practice_name }}{% if false %} {{ nobody }}{% endif %}"\n',
    )
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: template sms-confirmed.en: line 2: ")
    assert "unknown placeholder 'nobody'" in problem


def test_a_syntax_error_is_reported_with_the_file_template_and_line(tmp_path: Path) -> None:
    path = practice_file(
        tmp_path,
        "[email-reminder.en]\n"
        'subject = "Your visit"\n'
        "text = '''\n"
        "Hello,\n"
        "{% for v in visits %}\n"
        "- {{ v.when }\n"
        "{% endfor %}\n"
        "'''\n"
        'html = "<p>{{ practice_name }}</p>"\n',
    )
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: template email-reminder.en: line 6: ")


def test_a_misspelt_visit_field_is_reported_at_its_line(tmp_path: Path) -> None:
    path = practice_file(
        tmp_path,
        "[sms-cancelled.en]\n"
        "text = '''\n"
        "{{ practice_name }}: canceled\n"
        "{% for v in visits %}\n"
        "- {{ v.whne }}\n"
        "{% endfor %}\n"
        "'''\n",
    )
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: template sms-cancelled.en: line 5: ")
    assert "whne" in problem


def test_a_template_cannot_print_the_reason_for_a_visit(tmp_path: Path) -> None:
    path = practice_file(
        tmp_path,
        '[sms-reminder.en]\ntext = "{{ practice_name }} {{ visits[0].reason }}"\n',
    )
    [problem] = problems_of(path)
    assert "line 2: unknown placeholder or field" in problem
    assert "reason" in problem


def test_a_value_that_can_be_empty_must_be_inside_an_if(tmp_path: Path) -> None:
    path = practice_file(tmp_path, '[sms-reminder.en]\ntext = "Hi {{ first_name }}"\n')
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: template sms-reminder.en: line 2: prints a value")
    assert "{% if" in problem


def test_a_template_cannot_reach_python_internals(tmp_path: Path) -> None:
    path = practice_file(
        tmp_path,
        '[sms-reminder.en]\ntext = "{{ practice_name.__class__.__mro__[1].__subclasses__() }}"\n',
    )
    [problem] = problems_of(path)
    assert "line 2: not allowed in a template" in problem


def test_unknown_kinds_languages_and_parts_are_reported_where_they_are(tmp_path: Path) -> None:
    path = practice_file(
        tmp_path,
        '[sms-remindr.en]\ntext = "x"\n\n'
        '[sms-reminder.fr]\ntext = "x"\n\n'
        '[email-reminder.en]\ntext = "x"\nbody = "x"\n',
    )
    assert problems_of(path) == [
        f"{path}: template sms-remindr: line 1: unknown kind (known: sms-reminder, "
        "email-reminder, sms-confirmed, sms-cancelled, sms-reschedule, sms-slot-offer, "
        "email-slot-offer, slot-booked, slot-taken, slot-filled)",
        f"{path}: template sms-reminder.fr: line 4: unknown language (known: en, es)",
        f"{path}: template email-reminder.en: line 7: unknown part body "
        "(email-reminder has: subject, text, html)",
    ]


def test_a_file_that_is_not_toml_is_reported_with_its_line(tmp_path: Path) -> None:
    path = practice_file(tmp_path, '[sms-reminder.en]\ntext = "x"\ntext2 = oops\n')
    [problem] = problems_of(path)
    assert re.match(rf"{re.escape(str(path))}: line 3: not valid TOML", problem)


def test_every_problem_in_the_file_is_listed_at_once(tmp_path: Path) -> None:
    path = practice_file(
        tmp_path,
        '[sms-reminder.en]\ntext = "{{ nope }}"\n\n[sms-reminder.es]\ntext = "{% if %}"\n',
    )
    problems = problems_of(path)
    assert [p.split(": ")[1:3] for p in problems] == [
        ["template sms-reminder.en", "line 2"],
        ["template sms-reminder.es", "line 5"],
    ]


def test_load_templates_picks_up_an_edit_without_a_restart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    path = templates_path(settings)
    assert path == tmp_path / "templates" / "reminders.toml"
    first = load_templates(settings)
    assert load_templates(settings) is first  # unchanged: not read again
    path.parent.mkdir()
    path.write_text('[sms-confirmed.en]\ntext = "{{ practice_name }}: see you!"\n')
    edited = load_templates(settings)
    assert edited.render("sms-confirmed", context()).text == "Lakeside Pediatrics: see you!"
    path.write_text('[sms-confirmed.en]\ntext = "{{ practice_name }}: see you soon!"\n')
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a later edit
    again = load_templates(settings)
    assert again.render("sms-confirmed", context()).text == "Lakeside Pediatrics: see you soon!"
