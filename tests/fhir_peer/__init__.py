"""A FHIR R4 test peer on loopback: SMART Backend Services auth, REST, search and Bulk Data.

Written from the specifications (SMART App Launch 2.x Backend Services, FHIR Bulk Data Access
v2, FHIR R4 RESTful API) so clinicflow's EHR client can be tested over real HTTP:

    peer = FhirPeer(PeerConfig(clients={"clinicflow-test": jwks}))
    peer.load_ndjson_folder(folder)
    with running_peer(peer) as base_url:  # "http://127.0.0.1:<port>/fhir"
        ...

Run it alone with `python -m tests.fhir_peer --help`.
"""

from tests.fhir_peer.auth import JwksSource
from tests.fhir_peer.bulk import ExportFile, ExportJob
from tests.fhir_peer.faults import Fault
from tests.fhir_peer.middleware import RequestLog
from tests.fhir_peer.peer import FhirPeer, PeerConfig
from tests.fhir_peer.server import running_peer

__all__ = [
    "ExportFile",
    "ExportJob",
    "Fault",
    "FhirPeer",
    "JwksSource",
    "PeerConfig",
    "RequestLog",
    "running_peer",
]
