"""Run the installed `clinicflow` entry point as a real process, the way a person runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLINICFLOW = Path(sys.executable).parent / "clinicflow"
SAMPLE = Path(__file__).parents[1] / "data" / "synthea-sample"

Result = subprocess.CompletedProcess[str]


def embedded_env(data_dir: Path, *, shared_models: bool = True) -> dict[str, str]:
    """This machine's environment without any clinicflow settings, plus the data dir (and the
    test run's shared triage model directory, see `conftest.shared_triage_models`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICFLOW_")}
    env["CLINICFLOW_DATA_DIR"] = str(data_dir)
    models = os.environ.get("CLINICFLOW_TRIAGE_MODEL_DIR")
    if shared_models and models:
        env["CLINICFLOW_TRIAGE_MODEL_DIR"] = models
    return env


def start(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    """Start `clinicflow ARGS` on the embedded install in `data_dir` (also its working dir)."""
    return subprocess.Popen(
        [CLINICFLOW, *args],
        env=embedded_env(data_dir),
        cwd=data_dir,  # no clinicflow.toml from wherever pytest was started
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> Result:
    """Wait for a started command; its exit code, stdout and stderr."""
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def clinicflow(data_dir: Path, *args: str) -> Result:
    """Run `clinicflow ARGS` against the install in `data_dir` and wait for it."""
    return finish(start(data_dir, *args))


def said(result: Result) -> str:
    """stderr with rich's line wrapping undone, to look for a sentence in it."""
    return " ".join(result.stderr.split())
