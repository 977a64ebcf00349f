"""Periodic jobs: work a worker does every so often (the EHR sync), one worker at a time.

Every worker looks for due jobs, but a job runs in one place only: whoever wins the lease in
`periodic_jobs` (a compare-and-set, like every other lease here) runs it, outside any transaction
of ours because the job opens its own. A long job renews its lease as it goes; a worker that dies
leaves a lease that runs out, and another worker takes the job over. How the last run went (when
it started, finished, last succeeded, what failed) stays on the row for `status` and `/readyz`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from clinicflow.clock import Clock
from clinicflow.engine.upsert import NO_SYNC, insert_if_absent
from clinicflow.errors import ClinicflowError
from clinicflow.store import Database
from clinicflow.store.engine import PeriodicJob

logger = logging.getLogger(__name__)

# After a failure, try again this soon even if the job's interval is longer: an EHR that was down
# for a minute must not leave the replica an hour behind.
RETRY_AFTER_FAILURE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class JobRun:
    """What a running job may do besides its work: keep its lease while it takes long."""

    name: str
    renew: Callable[[], None]


@dataclass(frozen=True, slots=True)
class Periodic:
    """A job to run every `every`; it returns a summary (counts, no PHI) kept with its state."""

    name: str
    every: timedelta
    run: Callable[[JobRun], Mapping[str, object]]
    lease: timedelta = timedelta(minutes=10)


def claim(session: Session, job: Periodic, *, owner: str, now: datetime) -> bool:
    """Take the job's lease if it is due and nobody holds it; True if this caller won."""
    insert_if_absent(session, PeriodicJob, {"name": job.name}, ["name"])
    row = PeriodicJob.__table__.c
    retry_after = min(job.every, RETRY_AFTER_FAILURE)
    due = or_(
        row.last_started_at.is_(None),
        row.last_started_at <= now - job.every,
        and_(row.last_error.is_not(None), row.last_started_at <= now - retry_after),
    )
    free = or_(row.lease_expires_at.is_(None), row.lease_expires_at < now)
    result = session.execute(
        update(PeriodicJob)
        .where(row.name == job.name, due, free)
        .values(lease_owner=owner, lease_expires_at=now + job.lease, last_started_at=now),
        execution_options=NO_SYNC,
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult on UPDATE


def _mine(name: str, owner: str) -> ColumnElement[bool]:
    return and_(PeriodicJob.name == name, PeriodicJob.lease_owner == owner)


def renew(session: Session, job: Periodic, *, owner: str, now: datetime) -> bool:
    """Extend the lease this owner holds; False if it was lost (another worker took over)."""
    result = session.execute(
        update(PeriodicJob).where(_mine(job.name, owner)).values(lease_expires_at=now + job.lease),
        execution_options=NO_SYNC,
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult on UPDATE


def finish(
    session: Session,
    name: str,
    *,
    owner: str,
    now: datetime,
    error: str | None,
    summary: Mapping[str, object] | None,
) -> None:
    """Record how the run went and give the lease back."""
    values: dict[str, object] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "last_finished_at": now,
        "last_error": error,
    }
    if error is None:
        values |= {"last_success_at": now, "last_summary": dict(summary or {})}
    session.execute(
        update(PeriodicJob).where(_mine(name, owner)).values(**values),
        execution_options=NO_SYNC,
    )


class _Renewer:
    """Renews a lease at most every tenth of its length, whatever the job calls it at."""

    def __init__(self, db: Database, clock: Clock, job: Periodic, owner: str) -> None:
        self.db, self.clock, self.job, self.owner = db, clock, job, owner
        self.last = clock.monotonic()

    def __call__(self) -> None:
        if self.clock.monotonic() - self.last < self.job.lease.total_seconds() / 10:
            return
        self.last = self.clock.monotonic()
        with self.db.transaction() as session:
            if not renew(session, self.job, owner=self.owner, now=self.clock.now()):
                logger.warning("periodic job lost its lease", extra={"job": self.job.name})


def run_due(db: Database, clock: Clock, jobs: Sequence[Periodic], *, owner: str) -> list[str]:
    """Run each job that is due and whose lease this worker wins; the names of those run."""
    ran: list[str] = []
    for job in jobs:
        with db.transaction() as session:
            won = claim(session, job, owner=owner, now=clock.now())
        if not won:
            continue
        ran.append(job.name)
        error: str | None = None
        summary: Mapping[str, object] | None = None
        try:
            summary = job.run(JobRun(job.name, _Renewer(db, clock, job, owner)))
        except ClinicflowError as exc:
            error = exc.message
            logger.warning("periodic job failed", extra={"job": job.name, "error": error})
        except Exception as exc:  # a job's bug must not stop the others, nor the worker
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("periodic job failed", extra={"job": job.name})
        with db.transaction() as session:
            finish(session, job.name, owner=owner, now=clock.now(), error=error, summary=summary)
    return ran


def job_states(session: Session) -> dict[str, dict[str, object]]:
    """Each periodic job's last run, for `status` and `/readyz`."""
    rows = session.execute(select(PeriodicJob).order_by(PeriodicJob.name)).scalars()
    return {
        row.name: {
            "last_started_at": _iso(row.last_started_at),
            "last_finished_at": _iso(row.last_finished_at),
            "last_success_at": _iso(row.last_success_at),
            "last_error": row.last_error,
            "running": row.lease_owner is not None,
            "last_summary": row.last_summary,
        }
        for row in rows
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
