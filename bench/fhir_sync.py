"""Benchmark `clinicflow sync fhir --mode bulk` against `sync folder` on the same data, same run.

No arguments. Makes its own temp dirs, writes a 50,000-patient synthetic practice, serves it from
the FHIR test peer (tests/fhir_peer, its own process on loopback, SMART auth on) and measures:
  - fhir:   `clinicflow sync fhir --mode bulk` into an empty embedded data dir: token, kick-off,
            status poll, NDJSON streamed over HTTP into the same ingest path;
  - folder: `clinicflow sync folder` of the same files into another empty data dir.
A smaller practice is run too, so the peak RSS of the two sizes shows whether memory stays flat
as the export grows. Prints the figures last, as name=value pairs on one line.
Target: ratio >= 0.8, memory flat in the size of the export.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PATIENTS = int(os.environ.get("BENCH_PATIENTS", "50000"))
SMALL_PATIENTS = PATIENTS // 5
ANCHOR = date(2026, 11, 23)
CLIENT_ID = "clinicflow-bench"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICFLOW_")}
    return {**env, "CLINICFLOW_DATA_DIR": str(data_dir), **extra}


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run a clinicflow command; (seconds, peak RSS in MB) of that process alone."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    _out, err = proc.communicate()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        sys.stderr.write(err.decode())
        raise SystemExit(f"{' '.join(args[1:3])} failed with exit code {code}")
    return elapsed, round(usage.ru_maxrss / 1024)


def _count_lines(folder: Path) -> int:
    total = 0
    for path in folder.glob("*.ndjson"):
        with path.open("rb") as fh:
            total += sum(1 for line in fh if line.strip())
    return total


def measure(label: str, patients: int, work: Path) -> dict[str, float]:
    """fhir and folder figures for one practice size."""
    from clinicflow.synth import write_practice

    practice = work / f"{label}-practice"
    write_practice(practice, seed=7, patients=patients, anchor_on=ANCHOR)
    resources = _count_lines(practice)
    fhir_dir, folder_dir = work / f"{label}-fhir", work / f"{label}-folder"
    cli = str(BIN / "clinicflow")
    for data_dir in (fhir_dir, folder_dir):
        subprocess.run([cli, "db", "upgrade"], env=_env(data_dir), check=True, capture_output=True)
    subprocess.run([cli, "ehr", "keygen"], env=_env(fhir_dir), check=True, capture_output=True)
    jwks = work / f"{label}-jwks.json"
    jwks.write_bytes(
        subprocess.run(
            [cli, "ehr", "jwks"], env=_env(fhir_dir), check=True, capture_output=True
        ).stdout
    )
    peer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fhir_peer",
            "--data",
            str(practice),
            "--port",
            "0",
            "--client-id",
            CLIENT_ID,
            "--jwks",
            str(jwks),
            "--export-polls",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = peer.stdout.readline().strip() if peer.stdout else ""
        if not base_url.startswith("http"):
            raise SystemExit(f"the FHIR peer did not start (printed {base_url!r})")
        fhir_env = _env(
            fhir_dir, CLINICFLOW_FHIR_BASE_URL=base_url, CLINICFLOW_FHIR_CLIENT_ID=CLIENT_ID
        )
        fhir_s, fhir_rss = _timed([cli, "sync", "fhir", "--mode", "bulk"], fhir_env)
    finally:
        peer.terminate()
        peer.wait(timeout=30)
    folder_s, folder_rss = _timed([cli, "sync", "folder", str(practice)], _env(folder_dir))
    figures = {
        "resources": resources,
        "fhir_res_per_s": resources / fhir_s,
        "folder_res_per_s": resources / folder_s,
        "fhir_rss_mb": fhir_rss,
        "folder_rss_mb": folder_rss,
    }
    figures["ratio"] = figures["fhir_res_per_s"] / figures["folder_res_per_s"]
    print(
        f"{label}: {resources} resources, fhir {fhir_s:.1f}s ({fhir_rss} MB), "
        f"folder {folder_s:.1f}s ({folder_rss} MB), ratio {figures['ratio']:.2f}",
        file=sys.stderr,
    )
    return figures


def main() -> None:
    """Run both sizes and print the figures."""
    with tempfile.TemporaryDirectory(prefix="clinicflow-fhir-bench-") as tmp:
        work = Path(tmp)
        small = measure("small", SMALL_PATIENTS, work)
        large = measure("large", PATIENTS, work)
    pairs = {
        "patients": PATIENTS,
        "resources": large["resources"],
        "fhir_res_per_s": round(large["fhir_res_per_s"]),
        "folder_res_per_s": round(large["folder_res_per_s"]),
        "ratio": round(large["ratio"], 3),
        "peak_rss_mb": large["fhir_rss_mb"],
        "small_patients": SMALL_PATIENTS,
        "small_resources": small["resources"],
        "small_peak_rss_mb": small["fhir_rss_mb"],
    }
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))


if __name__ == "__main__":
    main()
