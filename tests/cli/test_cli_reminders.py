"""`clinicflow reminders templates export|check|preview` as a practice manager runs them: the
defaults exported to edit, mistakes named by file, template and line, and a preview of what a
(fictional) patient would read."""

from __future__ import annotations

import json
from pathlib import Path

from cli_process import clinicflow, said

TEMPLATES = ("reminders", "templates")


def practice_file(data_dir: Path) -> Path:
    return data_dir / "templates" / "reminders.toml"


def write_practice_file(data_dir: Path, text: str) -> Path:
    path = practice_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_export_then_check_round_trips_and_a_second_export_needs_force(tmp_path: Path) -> None:
    exported = clinicflow(tmp_path, *TEMPLATES, "export")
    assert exported.returncode == 0, exported.stderr
    path = practice_file(tmp_path)
    assert "[sms-reminder.es]" in path.read_text(encoding="utf-8")
    assert f"wrote the default templates to {path}" in said(exported)

    checked = clinicflow(tmp_path, *TEMPLATES, "check", "--json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] is True
    assert report["file"] == str(path)
    assert {t["source"] for t in report["templates"]} == {str(path)}
    assert len(report["templates"]) == 20

    path.write_text("# our edits\n", encoding="utf-8")
    refused = clinicflow(tmp_path, *TEMPLATES, "export")
    assert refused.returncode == 2
    assert "--force" in said(refused)
    assert path.read_text(encoding="utf-8") == "# our edits\n"
    forced = clinicflow(tmp_path, *TEMPLATES, "export", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "[sms-reminder.es]" in path.read_text(encoding="utf-8")


def test_check_without_a_practice_file_checks_the_defaults(tmp_path: Path) -> None:
    checked = clinicflow(tmp_path, *TEMPLATES, "check")
    assert checked.returncode == 0, checked.stderr
    assert "templates OK (defaults only: no practice file)" in said(checked)
    assert "sms-reminder.es" in checked.stderr
    assert "warning" not in checked.stderr


def test_check_names_file_template_and_line_of_each_problem_and_exits_1(tmp_path: Path) -> None:
    path = write_practice_file(
        tmp_path,
        "# Lakeside's wording\n"
        "[sms-reminder.es]\n"
        "text = '''\n"
        "{{ practice_name }}: Hola {{ fist_name }}\n"
        "'''\n"
        "\n"
        "[sms-confirmed.en]\n"
        "text = '''\n"
        "{{ practice_name }}: thanks\n"
        "{% for v in visits %}\n"
        "'''\n",
    )
    checked = clinicflow(tmp_path, *TEMPLATES, "check")
    assert checked.returncode == 1
    lines = checked.stderr.splitlines()
    assert any(
        line.startswith(
            f"{path}: template sms-reminder.es: line 4: unknown placeholder 'fist_name'"
        )
        for line in lines
    ), checked.stderr
    assert any(
        line.startswith(f"{path}: template sms-confirmed.en: line 10: ") for line in lines
    ), checked.stderr
    as_json = clinicflow(tmp_path, *TEMPLATES, "check", "--json")
    assert as_json.returncode == 1
    assert len(json.loads(as_json.stdout)["problems"]) == 2


def test_check_warns_about_a_long_or_ucs2_text_but_passes(tmp_path: Path) -> None:
    path = write_practice_file(
        tmp_path,
        "[sms-reminder.es]\n"
        "text = '''\n"
        "{{ practice_name }}: le recordamos su cita, está confirmada si no responde.\n"
        "{% for v in visits %}\n"
        "- {{ v.when_long }}: llegue 15 minutos antes, traiga su tarjeta del seguro y su "
        "identificación, y la lista de sus medicamentos.\n"
        "{% endfor %}\n"
        "Responda STOP para darse de baja.\n"
        "'''\n",
    )
    checked = clinicflow(tmp_path, *TEMPLATES, "check")
    assert checked.returncode == 0, checked.stderr
    text = said(checked)
    assert f"warning: {path}: template sms-reminder.es: sent as UCS-2" in text
    assert "segments: more than 3 costs more (sample: 2 visits" in text
    assert "template sms-reminder.en:" not in text  # the defaults stay within bounds


def test_preview_json_prints_the_sms_with_its_encoding_and_segments(tmp_path: Path) -> None:
    shown = clinicflow(
        tmp_path, *TEMPLATES, "preview", "--kind", "sms-reminder", "--lang", "es",
        "--visits", "2", "--json",
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    preview = json.loads(shown.stdout)
    assert preview["template"] == "sms-reminder.es"
    assert preview["source"].endswith("default_templates.toml")
    assert preview["subject"] is None
    assert preview["html"] is None
    text = preview["text"]
    assert "- mar 1 dic a las 14:30 con Dr. Ana Ruiz" in text
    assert "- mar 1 dic a las 15:15 con Dr. Sam Lee" in text
    assert "Responda C para confirmar, X para cancelar, R para cambiar la cita." in text
    assert preview["sms"]["encoding"] == "GSM-7"
    assert preview["sms"]["units"] == len(text)
    assert preview["sms"]["segments"] == -(-len(text) // 153)
    assert preview["warnings"] == []


def test_preview_of_an_email_shows_subject_text_and_html(tmp_path: Path) -> None:
    shown = clinicflow(tmp_path, *TEMPLATES, "preview", "--kind", "email-reminder", "--json")
    assert shown.returncode == 0, shown.stderr
    preview = json.loads(shown.stdout)
    assert preview["subject"] == (
        "Reminder: your appointment at Riverside Family Medicine on Tue, Dec 1"
    )
    assert "Tuesday, December 1, 2026 at 2:30 PM" in preview["text"]
    assert preview["html"].startswith("<!doctype html>")
    assert preview["sms"] is None

    readable = clinicflow(tmp_path, *TEMPLATES, "preview", "--kind", "email-reminder")
    assert readable.returncode == 0, readable.stderr
    for part in ("subject", "text", "html"):
        assert part in readable.stderr
    assert "<p>Hello Alex,</p>" in readable.stderr


def test_preview_shows_the_practice_template_once_it_is_edited(tmp_path: Path) -> None:
    path = write_practice_file(
        tmp_path,
        '[sms-reminder.en]\ntext = "{{ practice_name }}: see you {{ visits[0].when }}!"\n',
    )
    shown = clinicflow(tmp_path, *TEMPLATES, "preview", "--no-asks-reply")
    assert shown.returncode == 0, shown.stderr
    assert f"sms-reminder.en, from {path}" in said(shown)
    assert "Riverside Family Medicine: see you Tue, Dec 1 at 2:30 PM!" in shown.stderr
    assert "SMS: GSM-7, 57 characters, 1 segment" in said(shown)


def test_preview_refuses_an_unknown_kind_or_language(tmp_path: Path) -> None:
    kind = clinicflow(tmp_path, *TEMPLATES, "preview", "--kind", "sms-reminders")
    assert kind.returncode == 2
    assert "'sms-reminders' is not one of: sms-reminder" in said(kind)
    lang = clinicflow(tmp_path, *TEMPLATES, "preview", "--lang", "fr")
    assert lang.returncode == 2
    assert "'fr' is not one of: en, es" in said(lang)


def test_preview_of_a_broken_practice_file_lists_the_problems(tmp_path: Path) -> None:
    path = write_practice_file(tmp_path, '[sms-reminder.en]\ntext = "{{ visits[0].whn }}"\n')
    shown = clinicflow(tmp_path, *TEMPLATES, "preview")
    assert shown.returncode == 1
    assert f"{path}: template sms-reminder.en: line 2: unknown placeholder or field" in said(shown)
