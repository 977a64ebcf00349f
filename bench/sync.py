"""Benchmark `clinicflow sync folder` against a raw baseline, in the same run.

No arguments. Makes its own temp data dir. For the Synthea sample (shared/data) and a 50,000-patient
synthetic practice it measures:
  - raw:  parse every NDJSON line with the same JSON parser the sync uses (orjson) and insert
          (type, id, body) blobs into a fresh SQLite file, committing every DEFAULT_BATCH_SIZE
          rows as the sync does: the floor any sync must pay;
  - sync: `clinicflow sync folder` in a subprocess on the embedded default (SQLite WAL), with
          encryption, typed columns, blind index, events and audit all on.
Prints the figures last, as name=value pairs on one line. Target: ratio >= 0.5, peak RSS < 1 GB.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import orjson

from clinicflow.ehr.ingest import DEFAULT_BATCH_SIZE
from clinicflow.synth import write_practice

REPO = Path(__file__).resolve().parent.parent
SAMPLE = Path(
    os.environ.get(
        "CLINICFLOW_SAMPLE_DIR",
        REPO.parent / "shared/data/synthea/sample-bulk-10-patients-2025",
    )
)
PATIENTS = int(os.environ.get("BENCH_PATIENTS", "50000"))
ANCHOR = date(2026, 11, 23)
BATCH = DEFAULT_BATCH_SIZE  # the raw baseline commits as often as the sync does


def raw_baseline(folder: Path, db_path: Path) -> tuple[int, float]:
    """Parse and insert blobs; return (resources, seconds)."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE blobs (type TEXT, id TEXT, body BLOB, PRIMARY KEY (type, id))")
    count = 0
    started = time.perf_counter()
    for path in sorted(folder.glob("*.ndjson")):
        if path.name == "log.ndjson":
            continue
        rows = []
        with path.open("rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                res = orjson.loads(line)
                rows.append((res["resourceType"], res["id"], line))
                if len(rows) >= BATCH:
                    _insert(conn, rows)
                    count += len(rows)
                    rows = []
        if rows:
            _insert(conn, rows)
            count += len(rows)
    elapsed = time.perf_counter() - started
    conn.close()
    return count, elapsed


def _insert(conn: sqlite3.Connection, rows: list[tuple[str, str, bytes]]) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?)", rows)
    conn.execute("COMMIT")


def clinicflow_sync(folder: Path, data_dir: Path) -> float:
    """Run `clinicflow db upgrade` then time `clinicflow sync folder`; return seconds."""
    env = {**os.environ, "CLINICFLOW_DATA_DIR": str(data_dir)}
    env.pop("CLINICFLOW_DATABASE_URL", None)
    exe = str(Path(sys.executable).parent / "clinicflow")
    subprocess.run([exe, "db", "upgrade"], env=env, check=True, capture_output=True)
    started = time.perf_counter()
    done = subprocess.run(
        [exe, "sync", "folder", str(folder)], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stderr)
        raise SystemExit(f"sync failed with exit code {done.returncode}")
    return elapsed


def measure(label: str, folder: Path, work: Path) -> dict[str, float]:
    """Raw and sync figures for one folder."""
    count, raw_s = raw_baseline(folder, work / f"{label}-raw.db")
    sync_s = clinicflow_sync(folder, work / f"{label}-data")
    figures = {
        "resources": count,
        "raw_res_per_s": count / raw_s,
        "sync_res_per_s": count / sync_s,
    }
    figures["ratio"] = figures["sync_res_per_s"] / figures["raw_res_per_s"]
    print(
        f"{label}: {count} resources, raw {raw_s:.1f}s, sync {sync_s:.1f}s, "
        f"ratio {figures['ratio']:.2f}",
        file=sys.stderr,
    )
    return figures


def main() -> None:
    """Run both datasets and print the figures."""
    with tempfile.TemporaryDirectory(prefix="clinicflow-bench-") as tmp:
        work = Path(tmp)
        sample = measure("sample", SAMPLE, work)
        practice = work / "practice"
        started = time.perf_counter()
        write_practice(practice, seed=7, patients=PATIENTS, anchor_on=ANCHOR)
        print(f"synth {PATIENTS} patients: {time.perf_counter() - started:.1f}s", file=sys.stderr)
        large = measure("practice", practice, work)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    pairs = {
        "sample_resources": sample["resources"],
        "sample_sync_res_per_s": round(sample["sync_res_per_s"]),
        "sample_raw_res_per_s": round(sample["raw_res_per_s"]),
        "sample_ratio": round(sample["ratio"], 3),
        "patients": PATIENTS,
        "resources": large["resources"],
        "sync_res_per_s": round(large["sync_res_per_s"]),
        "raw_res_per_s": round(large["raw_res_per_s"]),
        "ratio": round(large["ratio"], 3),
        "peak_rss_mb": round(peak_kib / 1024),
    }
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))


if __name__ == "__main__":
    main()
