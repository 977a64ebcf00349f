"""`clinicflow ehr keygen|jwks|check`: set up and test the connection to the EHR."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from clinicflow.cli.runtime import Runtime
from clinicflow.cli.sync import print_rejections
from clinicflow.ehr.fhir_client import FhirClient, client_from_settings
from clinicflow.ehr.fhir_sync import SYNC_TYPES, supports_system_export
from clinicflow.ehr.signing import SigningAlg, public_jwks, write_new_key
from clinicflow.ehr.smart import SmartAuth
from clinicflow.ehr.window_reconcile import Window, reconcile_window
from clinicflow.errors import ClinicflowError

app = typer.Typer(help="Connect clinicflow to the practice's EHR.", no_args_is_help=True)


@app.command("keygen")
def keygen(
    alg: Annotated[SigningAlg, typer.Option(help="Signing algorithm")] = SigningAlg.ES384,
    rotate: Annotated[
        bool, typer.Option(help="Replace an existing key; its public half stays in the JWKS")
    ] = False,
) -> None:
    """Make the practice's SMART signing key (file mode 0600 in the data dir)."""
    rt = Runtime.load()
    key = write_new_key(rt.settings.keys_dir, alg, rotate=rotate)
    rt.console.print(
        f"Wrote a new {key.alg} signing key (kid {key.kid}) to {rt.settings.keys_dir}.\n"
        f"Register {rt.settings.public_url.rstrip('/')}/.well-known/jwks.json with the EHR as "
        "this client's JWKS URL (or paste the output of `clinicflow ehr jwks`)."
    )


@app.command("jwks")
def jwks() -> None:
    """Print the public JWKS (what the EHR registers; never the private key)."""
    rt = Runtime.load()
    rt.out(public_jwks(rt.settings.keys_dir, rt.settings.fhir_key_path))


@app.command("check")
def check(
    json_output: Annotated[bool, typer.Option("--json", help="Print the findings as JSON")] = False,
) -> None:
    """Show what the EHR supports and whether clinicflow can sign in and read what it needs."""
    rt = Runtime.load()
    findings: dict[str, Any] = {"base_url": rt.settings.fhir_base_url}
    with client_from_settings(rt.settings) as client:
        capability = client.capability()
        findings["fhir_version"] = capability.get("fhirVersion")
        findings["software"] = (capability.get("software") or {}).get("name")
        findings["bulk_export"] = supports_system_export(capability)
        auth = client.http.client.auth
        if isinstance(auth, SmartAuth):
            try:
                smart = client.smart_configuration()
                findings["token_endpoint"] = smart.get("token_endpoint")
                findings["signing_algs"] = smart.get(
                    "token_endpoint_auth_signing_alg_values_supported"
                )
                findings["granted_scopes"] = auth.access_token().scope
            except ClinicflowError as exc:
                findings["sign_in_error"] = exc.message
        else:
            findings["auth"] = "none (CLINICFLOW_FHIR_CLIENT_ID is not set)"
        declared = _declared_types(capability)
        findings["types"] = {
            rtype: _probe(client, rtype, rtype in declared) for rtype in SYNC_TYPES
        }
    if json_output:
        rt.out(findings)
        return
    table = Table("resource type", "declared", "search works", title=findings["base_url"])
    for rtype, result in findings["types"].items():
        table.add_row(rtype, "yes" if result["declared"] else "no", result["search"])
    for key, value in findings.items():
        if key != "types":
            rt.console.print(f"{key}: {value}", markup=False, highlight=False)
    rt.console.print(table)
    failing = [t for t, r in findings["types"].items() if r["search"] != "ok"]
    if failing or "sign_in_error" in findings:
        raise typer.Exit(1)


@app.command("reconcile")
def reconcile(
    days_ahead: Annotated[
        int | None, typer.Option(help="How far ahead to look (default: the setting)")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Find appointments the EHR deleted or hid (entered-in-error) and take them out of the replica.

    The worker does this every CLINICFLOW_FHIR_RECONCILE_INTERVAL_MINUTES; exit 1 if some could
    not be checked.
    """
    rt = Runtime.load()
    ahead = days_ahead if days_ahead is not None else rt.settings.fhir_reconcile_days_ahead
    window = Window.around(rt.clock.now(), ahead=timedelta(days=ahead))
    with client_from_settings(rt.settings) as client:
        report = reconcile_window(rt.db, rt.cipher, rt.clock, client, window=window)
    print_rejections(rt, report.ingest)
    for problem in report.unsettled:
        rt.console.print(f"not checked: {problem}", markup=False, highlight=False)
    if json_output:
        rt.out({**report.summary(), "removed_ids": report.removed})
    else:
        rt.console.print(
            f"{report.listed} appointments in the EHR from {window.start:%Y-%m-%d %H:%M} to "
            f"{window.end:%Y-%m-%d %H:%M}; {report.missing} missing from that list: "
            f"{len(report.removed)} deleted (removed here, their pending messages voided), "
            f"{report.refreshed} changed (updated here), {len(report.unsettled)} not checked",
            highlight=False,
        )
    if report.unsettled:
        raise typer.Exit(1)


def _declared_types(capability: dict[str, Any]) -> set[str]:
    return {
        str(resource.get("type"))
        for rest in capability.get("rest") or ()
        for resource in rest.get("resource") or ()
        if isinstance(resource, dict)
    }


def _probe(client: FhirClient, rtype: str, declared: bool) -> dict[str, Any]:
    """One small search: does this type answer, with our token and scopes?"""
    try:
        page = next(iter(client.search(rtype, {"_count": "1"})))
    except ClinicflowError as exc:
        return {"declared": declared, "search": exc.message}
    return {"declared": declared, "search": "ok", "total": page.total}
