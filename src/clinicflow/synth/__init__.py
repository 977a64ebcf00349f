"""Synthetic practice generator: a deterministic multi-specialty practice as FHIR R4 NDJSON."""

from clinicflow.synth.specialties import practitioner_count
from clinicflow.synth.writer import ProgressHook, write_practice

__all__ = ["ProgressHook", "practitioner_count", "write_practice"]
