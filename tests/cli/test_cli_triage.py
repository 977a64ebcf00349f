"""`clinicflow triage classify|evaluate` as an automation engineer runs them, on a fresh install."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.cli.cli_process import CLINICFLOW, clinicflow, embedded_env

from clinicflow.automations.triage.decide import default_triage

MESSAGES = [
    "X, can't come, chest pain",
    "denies chest pain, just need my lisinopril refilled",
    "no puedo respirar",
    "",
    "Can I pay my bill in two parts?",
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model directory for the tests below: trained once, then read."""
    return tmp_path_factory.mktemp("triage-models")


def _run(
    data_dir: Path, *args: str, text: str = "", models: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = embedded_env(data_dir, shared_models=False)  # each test says which models it uses
    if models is not None:
        env["CLINICFLOW_TRIAGE_MODEL_DIR"] = str(models)
    return subprocess.run(
        [CLINICFLOW, *args],
        input=text,
        env=env,
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_classify_on_a_fresh_install_prints_one_decision_per_line_the_automation_makes(
    tmp_path: Path,
) -> None:
    assert clinicflow(tmp_path, "db", "upgrade").returncode == 0
    done = _run(tmp_path, "triage", "classify", text="\n".join(MESSAGES) + "\n")
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(printed) == len(MESSAGES)
    assert [p["urgent"] for p in printed] == [True, False, True, False, False]
    assert [p["pool"] for p in printed] == [
        "urgent",
        "medication",
        "urgent",
        "other",
        "billing",
    ]
    assert all(isinstance(p["reasons"], list) and p["reasons"] for p in printed)
    # Exactly the decision the automation uses (same lexicon, same trained model).
    mine = default_triage().decide_many(MESSAGES)
    assert [(p["pool"], p["reasons"]) for p in printed] == [(d.pool, list(d.reasons)) for d in mine]
    assert (tmp_path / "models").is_dir()  # kept for the next process


def test_json_lines_pass_the_id_through_and_a_bad_line_gets_an_error_in_its_place(
    tmp_path: Path, models: Path
) -> None:
    lines = [
        json.dumps({"id": "m-1", "text": "my throat is closing after peanuts"}),
        "{not json",
        json.dumps({"id": 7, "text": "necesito una copia de mis resultados de laboratorio"}),
        json.dumps({"id": "m-3"}),
    ]
    done = _run(
        tmp_path, "triage", "classify", "--json-in", text="\n".join(lines) + "\n", models=models
    )
    assert done.returncode == 1  # some lines could not be read: said, not hidden
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(printed) == 4
    assert (printed[0]["id"], printed[0]["pool"], printed[0]["urgent"]) == ("m-1", "urgent", True)
    assert printed[1] == {
        "line": 2,
        "error": "line 2: not JSON (Expecting property name enclosed in double quotes)",
    }
    assert (printed[2]["id"], printed[2]["pool"]) == (7, "results")
    assert "needs a string field `text`" in printed[3]["error"]
    assert "2 line(s) could not be read" in done.stderr


def test_evaluate_prints_per_pool_precision_recall_and_the_confusion_matrix(
    tmp_path: Path, models: Path
) -> None:
    labelled = tmp_path / "mine.jsonl"
    labelled.write_text(
        "\n".join(
            json.dumps({"text": t, "pool": p})
            for t, p in [
                ("chest pain and sweating right now", "urgent"),
                ("I need a refill of my inhaler", "medication"),
                ("Can you move my appointment to Friday?", "appointment"),
                ("are my blood test results in?", "results"),
            ]
        ),
        encoding="utf-8",
    )
    done = _run(tmp_path, "triage", "evaluate", "--set", str(labelled), "--json", models=models)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["messages"] == 4
    assert found["routing_accuracy"] == 1.0
    assert found["pools"]["urgent"] == {
        "support": 1,
        "predicted": 1,
        "precision": 1.0,
        "recall": 1.0,
    }
    assert found["confusion"]["medication"]["medication"] == 1
    table = _run(tmp_path, "triage", "evaluate", models=models)  # the shipped held-out sets
    assert table.returncode == 0, table.stderr
    assert "Confusion matrix" in table.stderr
    assert "routing accuracy" in table.stderr
    assert "over 2000 messages" in table.stderr  # all four files together, then each alone
    for name in ("heldout", "heldout_b", "heldout_c", "heldout_d"):
        assert f"{name}.jsonl: routing accuracy" in table.stderr.split("over 2000 messages")[1]
    pooled = json.loads(_run(tmp_path, "triage", "evaluate", "--json", models=models).stdout)
    assert sorted(pooled["sets"]) == [
        f"{n}.jsonl" for n in ("heldout", "heldout_b", "heldout_c", "heldout_d")
    ]
    assert (
        sum(one["pools"]["urgent"]["support"] for one in pooled["sets"].values())
        == (pooled["pools"]["urgent"]["support"])
    )
