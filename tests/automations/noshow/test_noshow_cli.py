"""`clinicflow noshow evaluate|train` as a person runs them, on a slice of the public data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLINICFLOW = Path(sys.executable).parent / "clinicflow"
KAGGLE = Path("/work/shared/data/noshow/KaggleV2-May-2016.csv")
EVERY_NTH_ROW = 40  # ~2,760 rows across the whole date range: both sides of the cut


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICFLOW_")}
    return subprocess.run(
        [CLINICFLOW, *args],
        env=env | {"CLINICFLOW_DATA_DIR": str(data_dir)},
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _is_good(fields: list[str]) -> bool:
    return int(fields[5]) >= 0 and fields[4][:10] >= fields[3][:10]


@pytest.fixture
def kaggle_slice(tmp_path: Path) -> Path:
    if not KAGGLE.is_file():
        pytest.fail(f"the public no-show data is missing: {KAGGLE} (see shared/data)")
    lines = KAGGLE.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "slice.csv"
    # Only rows the reader keeps (the file has six bad ones), so every count below is exact.
    kept = [row for row in lines[1::EVERY_NTH_ROW] if _is_good(row.split(","))]
    path.write_text("\n".join([lines[0], *kept]) + "\n", encoding="utf-8")
    return path


def test_evaluate_from_kaggle_prints_one_json_object_with_the_figures_and_tables(
    tmp_path: Path, kaggle_slice: Path
) -> None:
    done = _run(tmp_path, "noshow", "evaluate", "--from-kaggle", str(kaggle_slice), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # the whole of stdout is one object
    rows = kaggle_slice.read_text().splitlines()[1:]
    n_test = sum(1 for row in rows if row.split(",")[4] >= "2016-05-25")
    assert report["n_test"] == n_test
    assert report["n_train"] == len(rows) - n_test
    assert report["cut"] == "2016-05-25"
    assert 0.6 < report["roc_auc"] < 0.85  # a signal, and no leakage
    assert 0 < report["pr_auc"] < 1
    assert 0 < report["brier"] < 0.2
    assert len(report["calibration"]) == 10
    assert set(report["by_sex"]) == {"female", "male"}
    assert {"0-4", "18-29", "65+"} <= set(report["by_age_band"])
    assert "training on" in done.stderr  # progress goes to stderr, not into the JSON


def test_train_from_kaggle_saves_the_model_and_its_card_under_the_data_dir(
    tmp_path: Path, kaggle_slice: Path
) -> None:
    done = _run(tmp_path, "noshow", "train", "--from-kaggle", str(kaggle_slice), "--json")
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    saved = json.loads((tmp_path / "models" / "noshow" / "model_card.json").read_text())
    assert saved["n_train"] == card["n_train"] == len(kaggle_slice.read_text().splitlines()) - 1
    assert saved["data_source"] == "kaggle:slice.csv"
    assert (tmp_path / "models" / "noshow" / "model.txt").is_file()


def test_train_without_practice_history_tells_to_use_the_public_data(tmp_path: Path) -> None:
    assert _run(tmp_path, "db", "upgrade").returncode == 0
    done = _run(tmp_path, "noshow", "train")
    assert done.returncode == 2
    assert "--from-kaggle" in done.stderr
    assert not (tmp_path / "models").exists()


def test_evaluate_refuses_a_cut_that_is_not_a_date(tmp_path: Path, kaggle_slice: Path) -> None:
    done = _run(tmp_path, "noshow", "evaluate", "--from-kaggle", str(kaggle_slice), "--cut", "May")
    assert done.returncode == 2
    assert "--cut 'May' is not a date" in done.stderr
