"""The worker's EHR jobs: the incremental sync and the reconciliation of the scheduling window.

They run as periodic jobs (`clinicflow.engine.periodic`): every worker offers to, one at a time
does, and each run's outcome is kept for `clinicflow status` and `/readyz`. None is set up
without an EHR (`CLINICFLOW_FHIR_BASE_URL`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from clinicflow.clock import Clock
from clinicflow.ehr.fhir_client import client_from_settings
from clinicflow.ehr.fhir_sync import sync_fhir
from clinicflow.ehr.window_reconcile import Window, reconcile_window
from clinicflow.engine.periodic import JobRun, Periodic
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database

logger = logging.getLogger(__name__)

EHR_SYNC_JOB = "ehr-sync"
EHR_RECONCILE_JOB = "ehr-reconcile"
# A sync renews its lease as batches land; this long without one, another worker takes over.
SYNC_LEASE = timedelta(minutes=10)


def ehr_jobs(settings: Settings, db: Database, cipher: PhiCipher, clock: Clock) -> list[Periodic]:
    """The periodic jobs a worker runs for the connected EHR (none when there is none)."""
    if not settings.fhir_base_url:
        return []

    def sync(job: JobRun) -> Mapping[str, object]:
        with client_from_settings(settings) as client:
            result = sync_fhir(db, cipher, clock, client, on_progress=lambda _n: job.renew())
        report = result.ingest
        for rejection in report.rejected:
            # Where only: a reason may quote the offending value. `sync fhir` shows it in full.
            logger.warning("EHR sync rejected a resource", extra={"where": rejection.where})
        return {
            "mode": str(result.mode),
            **report.counts(),
            "export_errors": len(result.export_errors),
        }

    def reconcile(job: JobRun) -> Mapping[str, object]:
        window = Window.around(
            clock.now(), ahead=timedelta(days=settings.fhir_reconcile_days_ahead)
        )
        with client_from_settings(settings) as client:
            report = reconcile_window(
                db, cipher, clock, client, window=window, on_progress=lambda _n: job.renew()
            )
        return report.summary()

    jobs: list[Periodic] = []
    if settings.fhir_sync_interval_minutes > 0:
        every = timedelta(minutes=settings.fhir_sync_interval_minutes)
        jobs.append(Periodic(EHR_SYNC_JOB, every, sync, lease=SYNC_LEASE))
    if settings.fhir_reconcile_interval_minutes > 0:
        every = timedelta(minutes=settings.fhir_reconcile_interval_minutes)
        jobs.append(Periodic(EHR_RECONCILE_JOB, every, reconcile, lease=SYNC_LEASE))
    return jobs
