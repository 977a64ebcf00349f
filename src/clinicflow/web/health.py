"""`/healthz`, `/readyz` and Prometheus `/metrics`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel

from clinicflow.ehr.scheduled import EHR_SYNC_JOB
from clinicflow.engine import QueueUnavailableError
from clinicflow.engine.periodic import job_states
from clinicflow.errors import StoreError
from clinicflow.store import check_reachable
from clinicflow.store.summary import ehr_sync_state, summarize
from clinicflow.web.auth import public
from clinicflow.web.state import AppState

router = APIRouter(
    dependencies=[Depends(public("monitoring: liveness, readiness and counts, no PHI"))]
)


def app_state(request: Request) -> AppState:
    """The AppState of the running app."""
    state: AppState = request.app.state.clinicflow
    return state


State = Annotated[AppState, Depends(app_state)]


class Health(BaseModel):
    """Liveness or readiness, with the checks that were made."""

    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up and answering."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(state: State) -> Response:
    """Ready to work: the database and the job queue both answer."""
    checks: dict[str, str] = {}
    try:
        check_reachable(state.db.engine)
        checks["database"] = "ok"
    except StoreError as exc:
        checks["database"] = exc.message
    try:
        state.queue.ping()
        checks["queue"] = "ok"
    except QueueUnavailableError as exc:
        checks["queue"] = exc.message
    ready = all(v == "ok" for v in checks.values())
    if state.settings.fhir_base_url and checks["database"] == "ok":
        # Reported, not gating: a lagging EHR sync must not take the web app out of service.
        checks["ehr_sync"] = _ehr_sync_check(state)
    body = Health(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _ehr_sync_check(state: AppState) -> str:
    base = str(state.settings.fhir_base_url).rstrip("/")
    with state.db.transaction() as session:
        synced = ehr_sync_state(session, state.clock.now()).get(base)
        failure = job_states(session).get(EHR_SYNC_JOB, {}).get("last_error")
    failed = f"; last attempt failed: {failure}" if failure else ""
    if synced is None or synced["lag_s"] is None:
        return f"never synced: run `clinicflow sync fhir` or `clinicflow worker`{failed}"
    interval_s = state.settings.fhir_sync_interval_minutes * 60
    lag_s = synced["lag_s"]
    verdict = "ok" if not interval_s or lag_s <= 2 * interval_s else "behind"
    return f"{verdict}: current as of {synced['current_as_of']} ({lag_s // 60} min ago){failed}"


class ReplicaCollector(Collector):
    """Gauges read from the database at scrape time: resources, events, work items, effects and
    runs."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.state.db.transaction() as session:
            summary = summarize(session)
        resources = GaugeMetricFamily(
            "clinicflow_resources", "Resources in the replica", labels=["type"]
        )
        for rtype, n in summary["resources"].items():
            resources.add_metric([rtype], n)
        yield resources
        yield GaugeMetricFamily(
            "clinicflow_events_pending",
            "Events not yet dispatched",
            value=summary["events"]["pending"],
        )
        yield GaugeMetricFamily(
            "clinicflow_work_items_open", "Open work items", value=summary["work_items"]["open"]
        )
        for name, key, text in (
            ("clinicflow_effects", "effects", "Effects by state"),
            ("clinicflow_runs", "runs", "Automation runs by state"),
        ):
            family = GaugeMetricFamily(name, text, labels=["state"])
            for label, n in summary[key].items():
                family.add_metric([label], n)
            yield family


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
