"""The EHR side: reading FHIR (folders now; FHIR over HTTP and Bulk Data later) into the replica."""

from clinicflow.ehr.ingest import Ingestor, IngestReport
from clinicflow.ehr.prepare import Rejection
from clinicflow.ehr.sync import count_items, sync_folder
from clinicflow.store.bodies import body_aad, open_body

__all__ = [
    "IngestReport",
    "Ingestor",
    "Rejection",
    "body_aad",
    "count_items",
    "open_body",
    "sync_folder",
]
