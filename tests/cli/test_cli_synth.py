"""`clinicflow synth` as a process: the same arguments write the same bytes."""

from __future__ import annotations

from pathlib import Path

from cli_process import clinicflow, said

ARGS = ("synth", "--seed", "1", "--patients", "50", "--anchor-date", "2026-11-23", "--out")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_synth_run_twice_into_the_same_folder_writes_the_same_bytes(tmp_path: Path) -> None:
    out = tmp_path / "practice"
    snapshots = []
    for _ in range(2):
        result = clinicflow(tmp_path, *ARGS, str(out))
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        assert "today is 2026-11-23 in America/New_York" in said(result)
        snapshots.append(_snapshot(out))
    first, second = snapshots
    assert "Appointment.ndjson" in first
    assert len(first["Patient.ndjson"].splitlines()) == 50
    assert first == second
