"""Pure parts of the FHIR connector: Retry-After, OperationOutcome text, paging links, manifests,
write-back decisions, and the signing key's files and JWKS."""

from __future__ import annotations

import random
import stat
from datetime import UTC, datetime

import jwt
import orjson
import pytest

from clinicflow.clock import SystemClock
from clinicflow.ehr.bulk_export import parse_manifest
from clinicflow.ehr.fhir_client import next_link, search_items
from clinicflow.ehr.fhir_sync import supports_system_export
from clinicflow.ehr.http import RetryPolicy, outcome_text, retry_after_seconds
from clinicflow.ehr.remote_writeback import (
    Verdict,
    decide_confirm,
    decide_status,
    for_ehr,
    with_effect_identifier,
)
from clinicflow.ehr.signing import (
    PREVIOUS_KEY_FILE,
    SigningAlg,
    load_key,
    public_jwks,
    thumbprint,
    write_new_key,
)
from clinicflow.ehr.smart import SmartClient, client_assertion
from clinicflow.errors import ConfigError, EhrError

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("7", NOW) == 7.0
    assert retry_after_seconds("Mon, 23 Nov 2026 14:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("Mon, 23 Nov 2026 13:00:00 GMT", NOW) == 0.0  # in the past
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None


def test_backoff_is_jittered_and_capped():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0)
    rng = random.Random(1)
    delays = [policy.backoff(attempt, rng) for attempt in range(10) for _ in range(20)]
    assert all(0 <= d <= 5.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jitter: not the same wait for everyone


def test_an_operation_outcome_becomes_one_readable_line():
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": "status is required",
                "expression": ["Appointment.status"],
            },
            {"severity": "warning", "code": "processing", "details": {"text": "slow"}},
        ],
    }
    assert outcome_text(outcome) == (
        "error: status is required (at Appointment.status); warning: slow"
    )
    assert outcome_text({"resourceType": "Patient"}) is None


def test_search_items_skip_outcomes_and_flag_entries_without_a_resource():
    bundle = {
        "resourceType": "Bundle",
        "link": [{"relation": "self", "url": "a"}, {"relation": "next", "url": "http://x/b"}],
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1"}, "search": {"mode": "match"}},
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}},
            {"fullUrl": "http://x/Patient/p2"},
            "junk",
        ],
    }
    items = list(search_items(bundle, "Patient search page 1"))
    assert [(i.where, i.error) for i in items] == [
        ("Patient search page 1 entry 1", None),
        ("Patient search page 1 entry 3", "entry has no resource object"),
        ("Patient search page 1 entry 4", "entry is not an object"),
    ]
    assert next_link(bundle) == "http://x/b"
    assert next_link({"link": [{"relation": "self", "url": "a"}]}) is None


def test_a_manifest_is_read_and_a_broken_one_named():
    manifest = parse_manifest(
        orjson.dumps(
            {
                "transactionTime": "2026-11-23T13:59:00Z",
                "requiresAccessToken": True,
                "output": [{"type": "Patient", "url": "http://x/f1", "count": 3}],
                "error": [{"type": "OperationOutcome", "url": "http://x/e1"}],
            }
        )
    )
    assert manifest.transaction_time == datetime(2026, 11, 23, 13, 59, tzinfo=UTC)
    assert [(f.resource_type, f.count) for f in manifest.outputs] == [("Patient", 3)]
    assert manifest.errors[0].url == "http://x/e1"
    with pytest.raises(EhrError, match=r"output\[0\]"):
        parse_manifest(b'{"transactionTime": "2026-11-23T13:59:00Z", "output": [{"url": "u"}]}')
    with pytest.raises(EhrError, match="transactionTime"):
        parse_manifest(b'{"output": []}')


def test_system_export_is_recognised_by_name_or_definition():
    by_name = {"rest": [{"operation": [{"name": "export", "definition": "x"}]}]}
    by_url = {
        "rest": [
            {
                "operation": [
                    {
                        "name": "bulk",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export|2.0.0",
                    }
                ]
            }
        ]
    }
    assert supports_system_export(by_name)
    assert supports_system_export(by_url)
    assert not supports_system_export({"rest": [{"operation": [{"name": "everything"}]}]})


BOOKED = {
    "resourceType": "Appointment",
    "id": "a1",
    "status": "booked",
    "participant": [{"actor": {"reference": "Patient/p1"}, "status": "needs-action"}],
}


def test_write_back_decisions_never_undo_what_happened_at_the_desk():
    assert decide_status(BOOKED, "cancelled").verdict is Verdict.APPLY
    assert decide_status({**BOOKED, "status": "cancelled"}, "cancelled").verdict is Verdict.ALREADY
    stale = decide_status({**BOOKED, "status": "fulfilled"}, "cancelled")
    assert stale.verdict is Verdict.STALE
    assert "fulfilled" in stale.why
    assert decide_confirm(BOOKED).verdict is Verdict.APPLY
    assert decide_confirm({**BOOKED, "status": "cancelled"}).verdict is Verdict.STALE
    accepted = {
        **BOOKED,
        "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"}],
    }
    assert decide_confirm(accepted).verdict is Verdict.ALREADY


def test_what_we_send_leaves_stamping_to_the_server_and_names_the_effect():
    sent = for_ehr(
        {**BOOKED, "meta": {"lastUpdated": "x", "versionId": "3", "tag": [{"code": "t"}]}}
    )
    assert sent["meta"] == {"tag": [{"code": "t"}]}
    made = with_effect_identifier({"resourceType": "Communication", "id": "tmp"}, "key-1")
    assert "id" not in made
    assert made["identifier"] == [{"system": "urn:clinicflow:effect", "value": "key-1"}]


@pytest.mark.parametrize("alg", list(SigningAlg))
def test_keygen_writes_a_private_file_and_the_jwks_holds_only_public_parts(tmp_path, alg):
    key = write_new_key(tmp_path, alg)
    path = tmp_path / "ehr-signing-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path).kid == key.kid
    jwks = public_jwks(tmp_path)
    (jwk,) = jwks["keys"]
    assert jwk["kid"] == key.kid == thumbprint(jwk)
    assert jwk["alg"] == str(alg)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)  # no private members
    # An assertion signed with the key verifies against the published JWK.
    token = client_assertion(SmartClient("cf", key), "https://ehr/token", SystemClock().now())
    claims = jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=[str(alg)], audience="https://ehr/token"
    )
    assert claims["iss"] == claims["sub"] == "cf"
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(token)["kid"] == key.kid


def test_rotation_keeps_the_old_public_key_published(tmp_path):
    first = write_new_key(tmp_path, SigningAlg.ES384)
    with pytest.raises(ConfigError, match="--rotate"):
        write_new_key(tmp_path, SigningAlg.ES384)
    second = write_new_key(tmp_path, SigningAlg.RS384, rotate=True)
    assert (tmp_path / PREVIOUS_KEY_FILE).exists()
    assert [k["kid"] for k in public_jwks(tmp_path)["keys"]] == [second.kid, first.kid]


def test_a_missing_key_says_what_to_run(tmp_path):
    with pytest.raises(ConfigError, match="clinicflow ehr keygen"):
        load_key(tmp_path / "nope.pem")
