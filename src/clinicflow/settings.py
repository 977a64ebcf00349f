"""One Settings object: env CLINICFLOW_*, an optional TOML file, and the embedded defaults."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATA_DIR = Path("var")
EHR_SIGNING_KEY_FILE = "ehr-signing-key.pem"  # in the keys dir, written by `clinicflow ehr keygen`


def _toml_path() -> Path | None:
    """The TOML file named by CLINICFLOW_CONFIG, else clinicflow.toml in the working directory."""
    named = os.environ.get("CLINICFLOW_CONFIG")
    if named:
        return Path(named)
    local = Path("clinicflow.toml")
    return local if local.exists() else None


class Settings(BaseSettings):
    """Everything configurable. No setting at all gives the embedded default on one machine."""

    model_config = SettingsConfigDict(env_prefix="CLINICFLOW_", extra="ignore")

    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Where the database, keys and queue live")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; unset means SQLite (WAL) in the data dir"
    )
    redis_url: str | None = Field(
        None, description="Redis for the job queue; unset: huey on SQLite"
    )
    timezone: str = Field("America/New_York", description="The practice's IANA time zone")
    practice_name: str = Field(
        "Your care team", description="How messages to patients name the practice"
    )
    practice_phone: str | None = Field(
        None, description="The number patients call, printed in messages and patient pages"
    )
    unit_minutes: dict[str, float] = Field(
        default_factory=dict,
        description="Minutes one unit of work saves, overriding an automation's estimate; keys "
        "are 'automation.unit', e.g. {'appointment-reminders.confirmation_received': 3}",
    )
    unit_minutes_notes: dict[str, str] = Field(
        default_factory=dict,
        description="Where each overridden unit_minutes figure came from, by the same keys "
        "(e.g. {'reminder-replies.confirmation_received': 'time study, desk, Oct 2026'})",
    )
    role_hourly_cost: dict[str, float] = Field(
        default_factory=lambda: {
            "front-desk": 24.0,
            "scheduler": 26.0,
            "billing": 30.0,
            "nurse": 52.0,
            "physician": 160.0,
        },
        description="Loaded hourly cost in dollars (wage and benefits) of the role that did an "
        "automation's task before, by the automation's owner pool; others count as front-desk",
    )
    noshow_baseline_rate: float = Field(
        0.18,
        description="The practice's no-show rate before automation: no-shows below it count as "
        "avoided on the Impact page (at a routine visit's value)",
    )
    impact_discount_rate: float = Field(
        0.08, description="Yearly discount rate for proposals' 5-year NPV"
    )
    visit_values: dict[str, float] = Field(
        default_factory=lambda: {"ROUTINE": 150.0, "FOLLOWUP": 110.0, "CHECKUP": 180.0},
        description="What a visit of each v2-0276 type earns the practice, in dollars: the revenue "
        "a backfilled slot recovers (types not listed count as ROUTINE)",
    )
    waitlist_wave_size: int = Field(3, description="Waitlist patients offered a freed slot at once")
    waitlist_wave_gap_minutes: int = Field(
        15, description="Minutes between one wave of waitlist offers and the next"
    )
    waitlist_max_waves: int = Field(
        4, description="Waves of offers before the front desk is asked to fill the slot"
    )
    waitlist_min_lead_minutes: int = Field(
        120, description="No offers for a slot starting sooner than this: too late to come"
    )
    waitlist_recontact_hours: int = Field(
        48, description="Hours before a waitlist patient may be offered another slot"
    )
    triage_red_flags: Path | None = Field(
        None,
        description="The practice's red-flag lexicon (TOML, like the shipped "
        "automations/triage/data/red_flags.toml); unset: the shipped one",
    )
    triage_templates: Path | None = Field(
        None,
        description="The practice's triage replies (TOML: safety, receipt, acknowledgement, "
        "EN/ES); "
        "unset: the shipped ones",
    )
    triage_model_dir: Path | None = Field(
        None,
        description="Where the trained triage model is kept between processes; unset: "
        "models/ in the data dir",
    )
    triage_escalate_minutes: int = Field(
        5,
        description="Minutes an urgent message may wait unacknowledged before the next person "
        "on the rota is alerted",
    )
    triage_service_minutes: dict[str, int] = Field(
        default_factory=dict,
        description="Minutes within which each pool answers (the work item's due time), "
        'overriding the defaults, e.g. {"billing": 1440}',
    )
    self_scheduling_url: str | None = Field(
        None,
        description="Where patients book or move a visit online, offered in the acknowledgement "
        "of appointment messages",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000", description="Base URL patients and webhooks use"
    )
    phi_key: SecretStr | None = Field(
        None, description="Base64 AES-256 key for PHI; unset: the key file in the data dir"
    )
    phi_previous_keys: SecretStr | None = Field(
        None,
        description="Older base64 PHI keys, comma-separated, still needed to decrypt while "
        "`clinicflow phi rotate-key` re-encrypts (only with CLINICFLOW_PHI_KEY)",
    )
    phi_index_key: SecretStr | None = Field(
        None,
        description="Base64 key for blind-index lookups; unset: derived from CLINICFLOW_PHI_KEY "
        "(pin it with `clinicflow phi index-key` before rotating that key)",
    )
    demo: bool = Field(False, description="Demo mode: placeholders allowed, demo data shown")
    fhir_base_url: str | None = Field(None, description="The EHR's FHIR R4 base; unset: no EHR")
    fhir_client_id: str | None = Field(
        None,
        description="The client id the EHR registered for clinicflow (SMART Backend Services); "
        "unset: no auth (an open test server)",
    )
    fhir_key_path: Path | None = Field(
        None,
        description="PEM private key for the SMART client assertion; unset: the key "
        "`clinicflow ehr keygen` wrote in the data dir",
    )
    fhir_scopes: str = Field(
        "system/*.rs system/Appointment.u system/Communication.c system/Task.c "
        "system/DocumentReference.c",
        description="Scopes requested from the EHR (SMART v2 syntax)",
    )
    fhir_retry_attempts: int = Field(5, description="Tries per FHIR request when throttled")
    fhir_max_wait_s: float = Field(60.0, description="Longest wait between tries (Retry-After)")
    fhir_sync_interval_minutes: int = Field(
        15, description="How often the worker syncs from the EHR (0: never on its own)"
    )
    fhir_reconcile_interval_minutes: int = Field(
        60,
        description="How often the worker checks the scheduling window for appointments the EHR "
        "deleted (0: never)",
    )
    fhir_reconcile_days_ahead: int = Field(
        30, description="How far ahead the reconciliation looks (it also covers the past day)"
    )
    # Patient channels. Unset: the sandbox delivers SMS and e-mail to the outbox.
    twilio_account_sid: str | None = Field(
        None, description="Twilio account SID; unset: sandbox SMS"
    )
    twilio_auth_token: SecretStr | None = Field(
        None, description="Twilio auth token (signs webhooks too)"
    )
    twilio_from_number: str | None = Field(
        None, description="The practice's sending number, E.164 (or a Messaging Service SID)"
    )
    twilio_api_url: str | None = Field(
        None, description="Where Twilio's REST API is (tests point it at a loopback peer)"
    )
    sms_per_second: float = Field(
        1.0, description="Messages per second per sending number (long code 1, toll-free 3, ...)"
    )
    smtp_host: str | None = Field(None, description="SMTP server for e-mail; unset: sandbox e-mail")
    smtp_port: int = Field(587, description="SMTP port")
    smtp_username: str | None = Field(None, description="SMTP user, if the server asks for one")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_tls: str = Field(
        "starttls", description="starttls | tls (implicit, port 465) | none (loopback only)"
    )
    email_from: str = Field(
        "clinicflow <reminders@localhost>", description="From: of patient e-mail"
    )
    # Staff sign-in. "test" hashing exists only so test suites can sign in quickly.
    password_hashing: Literal["production", "test"] = Field(
        "production", description="argon2id cost profile for staff passwords"
    )
    idle_logoff_minutes: int = Field(
        15, ge=1, le=60, description="Signed-in staff are logged off after this much inactivity"
    )
    session_hours: int = Field(
        12, ge=1, le=24, description="A sign-in lasts at most this long, active or not"
    )
    web_workers: int = Field(
        1, ge=1, le=32, description="Processes `clinicflow serve` runs (one per core is plenty)"
    )
    worker_threads: int = Field(4, description="Worker threads per `clinicflow worker` process")
    effect_lease_s: float = Field(120.0, description="How long a worker may hold an effect")
    log_level: str = Field("INFO", description="Log level for the JSON logs")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"CLINICFLOW_TIMEZONE={value!r} is not an IANA time zone") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003  (hook signature; no .env)
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003  (hook signature)
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _toml_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'clinicflow.db').resolve()}"

    @property
    def is_embedded(self) -> bool:
        """True when running on the embedded default database."""
        return self.resolved_database_url.startswith("sqlite")

    @property
    def queue_path(self) -> Path:
        """huey's own SQLite file, kept apart from the app database."""
        return self.data_dir / "queue.db"

    @property
    def resolved_fhir_key_path(self) -> Path:
        """The SMART signing key: the configured path, else the one `ehr keygen` writes."""
        return self.fhir_key_path or self.keys_dir / EHR_SIGNING_KEY_FILE

    @property
    def keys_dir(self) -> Path:
        """Where key files live (mode 0700 directory, 0600 files)."""
        return self.data_dir / "keys"

    def describe(self) -> dict[str, Any]:
        """Non-secret settings for `status` and logs."""
        return {
            "data_dir": str(self.data_dir),
            "database": "sqlite" if self.is_embedded else "postgresql",
            "queue": "redis" if self.redis_url else "sqlite",
            "timezone": self.timezone,
            "ehr": self.fhir_base_url or "none (write-backs are local)",
            "sms": "twilio" if self.twilio_account_sid else "sandbox (outbox)",
            "email": f"smtp {self.smtp_host}" if self.smtp_host else "sandbox (outbox)",
        }


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file (used by tests and the config check)."""
    with path.open("rb") as fh:
        return tomllib.load(fh)
