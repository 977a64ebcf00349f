"""clinicflow's exceptions: each says what happened and what to do, with a stable code."""

from __future__ import annotations


class ClinicflowError(Exception):
    """Base error: `message` is for a person, `code` stays stable for machines, `retryable` for
    queues."""

    code = "clinicflow.error"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable


class ConfigError(ClinicflowError):
    """A setting is missing or wrong; the message names the setting."""

    code = "config.invalid"


class InputError(ClinicflowError):
    """Bad input (a FHIR resource, a file line, a form field); `where` says where it was found."""

    code = "input.invalid"

    def __init__(self, message: str, *, where: str = "", code: str | None = None):
        super().__init__(message, code=code)
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class StoreError(ClinicflowError):
    """The database cannot be reached or is not set up."""

    code = "store.unavailable"
    retryable = True


class EngineError(ClinicflowError):
    """An automation, run or effect could not be carried out."""

    code = "engine.error"


class SecurityError(ClinicflowError):
    """Keys, encryption or the audit chain are not in order."""

    code = "security.error"


class EhrError(ClinicflowError):
    """The EHR refused or failed a request; the message says what, which resource and why."""

    code = "ehr.error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool | None = None,
    ):
        super().__init__(message, code=code, retryable=retryable)
        self.status = status


class EhrConflictError(EhrError):
    """The resource changed in the EHR since we read it (HTTP 412): re-read and decide again."""

    code = "ehr.conflict"
