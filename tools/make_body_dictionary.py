"""Train the zstd dictionary replica bodies are compressed with (`clinicflow.store.bodies`).

Run once per new dictionary, never to replace a shipped one: stored bodies name the dictionary
they were made with, so a shipped file must stay byte for byte as it is. Trains on fictional
data only: clinicflow's synthetic practice (fixed seed and anchor date) and, when it is there,
the public Synthea sample in ../shared/data (see its SOURCE.md), so the dictionary holds no PHI.

    .venv/bin/python tools/make_body_dictionary.py NUMBER
prints the file's SHA-256 to pin in `DICTIONARIES`.
"""

from __future__ import annotations

import hashlib
import random
import sys
import tempfile
from datetime import date
from pathlib import Path

import orjson
import zstandard

from clinicflow.synth import write_practice

REPO = Path(__file__).resolve().parent.parent
SYNTHEA = REPO.parent / "shared/data/synthea"
SIZE = 64 * 1024
PER_TYPE = 1500  # a sample per resource type, so rare types are in the dictionary too
SYNTHEA_PER_TYPE = 300


def canonical_bodies(folder: Path) -> dict[str, list[bytes]]:
    """Every resource under `folder` as the replica serialises it, by resource type."""
    by_type: dict[str, list[bytes]] = {}
    for path in sorted(folder.rglob("*.ndjson")):
        if path.name == "log.ndjson":
            continue
        for line in path.open("rb"):
            if line.strip():
                resource = orjson.loads(line)
                body = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
                by_type.setdefault(resource["resourceType"], []).append(body)
    return by_type


def sample(by_type: dict[str, list[bytes]], per_type: int, rng: random.Random) -> list[bytes]:
    """Up to `per_type` bodies of each type, in a fixed order."""
    return [
        body
        for rtype in sorted(by_type)
        for body in rng.sample(by_type[rtype], min(per_type, len(by_type[rtype])))
    ]


def main() -> None:
    number = int(sys.argv[1])
    rng = random.Random(number)
    with tempfile.TemporaryDirectory() as tmp:
        write_practice(Path(tmp), seed=11, patients=2000, anchor_on=date(2025, 3, 3))
        bodies = sample(canonical_bodies(Path(tmp)), PER_TYPE, rng)
    if SYNTHEA.is_dir():
        bodies += sample(canonical_bodies(SYNTHEA), SYNTHEA_PER_TYPE, rng)
    data = zstandard.train_dictionary(SIZE, bodies, level=3).as_bytes()
    out = REPO / f"src/clinicflow/store/fhir-r4-bodies-{number}.zdict"
    out.write_bytes(data)
    print(f"{out.relative_to(REPO)}: {len(data)} bytes from {len(bodies)} bodies")
    print(hashlib.sha256(data).hexdigest())


if __name__ == "__main__":
    main()
