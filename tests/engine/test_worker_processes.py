"""Real worker processes: one is SIGKILLed mid-batch and restarted; every message goes out once.

The workers are `python -m clinicflow.cli.engine worker` subprocesses that load the test-only
automations in `worker_automations.py` through CLINICFLOW_EXTRA_AUTOMATIONS. They use the real
clock with a 2 s lease, so the reconciler takes over from the dead worker within seconds.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import worker_automations
from engine_harness import REDIS_TEST_URL, forget_redis_queue, redis_answers_or_fail
from sqlalchemy import func, select

from clinicflow.clock import SystemClock
from clinicflow.engine import (
    EffectState,
    EngineRuntime,
    Registry,
    RunState,
    TaskQueue,
    request_run,
    run_outcome,
)
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.engine import Effect, SandboxMessage
from clinicflow.store.schema import create_schema

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"
DEADLINE_S = 60.0


@dataclass
class Cluster:
    """Worker processes over one database and one queue, as a deployment would run them."""

    env: dict[str, str]
    queue_name: str
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clinicflow.cli.engine",
                "worker",
                "--workers",
                "2",
                "--tick-s",
                "0.5",
                "--queue-name",
                self.queue_name,
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.log_dir.glob("*.log"))


@pytest.fixture(params=["postgresql+redis", "sqlite+sqlitehuey"])
def cluster_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Cluster, Database, TaskQueue, PhiCipher]]:
    """A database and queue, and a Cluster configured to share them."""
    key = base64.b64encode(os.urandom(32)).decode()
    queue_name = f"cf-test-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "CLINICFLOW_DATA_DIR": str(tmp_path),
        "CLINICFLOW_PHI_KEY": key,
        "CLINICFLOW_EFFECT_LEASE_S": "2",
        "CLINICFLOW_LOG_LEVEL": "INFO",
        "CLINICFLOW_EXTRA_AUTOMATIONS": "worker_automations:BATCH",
        "CLINICFLOW_TEST_SEND_DELAY_S": "0.2",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("CLINICFLOW_REDIS_URL", None)
    if request.param == "postgresql+redis":
        redis_answers_or_fail()
        url = str(request.getfixturevalue("pg_url"))
        env["CLINICFLOW_REDIS_URL"] = REDIS_TEST_URL
        queue = TaskQueue.redis(REDIS_TEST_URL, name=queue_name)
    else:
        url = f"sqlite:///{tmp_path / 'clinicflow.db'}"
        queue = TaskQueue.sqlite(tmp_path / "queue.db", name=queue_name)
    env["CLINICFLOW_DATABASE_URL"] = url
    db = Database.from_url(url)
    create_schema(db.engine)
    logs = tmp_path / "logs"
    logs.mkdir()
    cluster = Cluster(env, queue_name, logs)
    try:
        yield cluster, db, queue, PhiCipher(Keyring.from_secret(key))
    finally:
        cluster.stop_all()
        db.dispose()
        if request.param == "postgresql+redis":
            forget_redis_queue(queue_name)


def _wait_for(predicate: object, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}; worker logs:\n{cluster.logs()}")


@pytest.mark.slow
def test_a_worker_killed_mid_batch_leaves_every_message_sent_exactly_once(
    cluster_db: tuple[Cluster, Database, TaskQueue, PhiCipher],
) -> None:
    cluster, db, queue, cipher = cluster_db
    victim = cluster.start_worker()
    cluster.start_worker()
    rt = EngineRuntime.build(
        db=db,
        settings=Settings(effect_lease_s=2.0),
        clock=SystemClock(),
        cipher=cipher,
        registry=Registry([worker_automations.BATCH]),
    )
    run_id = request_run(rt, "test-batch", dry_run=False, requested_by="test")
    queue.enqueue_run(run_id)

    def victim_is_mid_call() -> bool:
        with db.transaction() as session:
            return bool(
                session.scalar(
                    select(func.count()).where(
                        Effect.state == EffectState.IN_FLIGHT,
                        Effect.lease_owner.like(f"%:{victim.pid}/%"),
                    )
                )
            )

    _wait_for(victim_is_mid_call, "the first worker to be mid-call", cluster)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    cluster.start_worker()

    def all_done() -> bool:
        with db.transaction() as session:
            states = session.scalars(select(Effect.state)).all()
        size = worker_automations.BATCH_SIZE
        return len(states) == size and set(states) == {EffectState.DONE}

    _wait_for(all_done, "every effect to be done", cluster)
    with db.transaction() as session:
        per_key = dict(
            session.execute(
                select(SandboxMessage.effect_key, func.count()).group_by(SandboxMessage.effect_key)
            ).all()
        )
    expected = {worker_automations.batch_key(i) for i in range(worker_automations.BATCH_SIZE)}
    assert set(per_key) == expected
    assert set(per_key.values()) == {1}, f"sent twice: {[k for k, n in per_key.items() if n > 1]}"
    assert run_outcome(rt, run_id).state is RunState.SUCCEEDED
