"""The EHR side: reading FHIR (folders now; FHIR over HTTP and Bulk Data later) into the replica."""

from clinicflow.ehr.ingest import Ingestor, IngestReport, Rejection
from clinicflow.ehr.replica_writer import body_aad
from clinicflow.ehr.sync import count_items, sync_folder

__all__ = ["IngestReport", "Ingestor", "Rejection", "body_aad", "count_items", "sync_folder"]
