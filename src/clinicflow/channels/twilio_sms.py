"""Texts through Twilio: send one message, find it again after a crash, and keep to the rate.

We use Twilio's own client (`twilio.rest.Client`), whose HTTP client can be pointed at a loopback
peer that speaks Twilio's REST API (`twilio_api_url`), so tests run the real library over HTTP.

Twilio failures become `SmsError` with `retryable` set, or `OutcomeUnknownError` when the request
may have reached Twilio and we cannot tell whether a message was created: the engine then asks
`find_sent` before sending again, so a patient never gets the same reminder twice.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from clinicflow.channels.sms_webhook import KEY_TAG_PARAM, STATUS_PATH, callback_key_tag
from clinicflow.clock import Clock, SystemClock
from clinicflow.engine.handlers import OutcomeUnknownError
from clinicflow.errors import ClinicflowError, ConfigError
from clinicflow.settings import Settings

logger = logging.getLogger(__name__)

_TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]+\.twilio\.com")
# Twilio prefixes texts from trial accounts; the stored Body then carries the prefix too.
_TRIAL_PREFIX = "Sent from your Twilio trial account - "
# Our clock and Twilio's may disagree a little about when `since` was.
_CLOCK_SKEW = timedelta(minutes=2)
# find_sent reads at most this many of a number's messages (newest first) before giving up.
_SCAN_LIMIT = 500


class SmsError(ClinicflowError):
    """Twilio refused a text or could not be reached; surely nothing was sent."""

    code = "sms.error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        status: int | None = None,
        twilio_code: int | None = None,
    ):
        super().__init__(message, code=code, retryable=retryable)
        self.status = status
        self.twilio_code = twilio_code


@dataclass(frozen=True, slots=True)
class SentSms:
    """A message Twilio holds: its SID ("SM…") and its status when we last looked."""

    sid: str
    status: str


# Twilio error codes that mean this message will never go, in words the front desk can act on.
# https://www.twilio.com/docs/api/errors
_PERMANENT: dict[int, tuple[str, str]] = {
    21211: (
        "sms.invalid_number",
        "The patient's mobile number is not a valid phone number. Please correct it in the EHR.",
    ),
    21610: (
        "sms.opted_out",
        "This mobile number opted out of texts (the patient replied STOP). Please call; texts "
        "resume only if the patient replies START.",
    ),
    21614: (
        "sms.not_mobile",
        "The patient's number cannot receive texts (it is not a mobile number). Please call.",
    ),
    21612: (
        "sms.unreachable",
        "Twilio cannot deliver texts to this number from the practice's number. Please call.",
    ),
    21408: (
        "sms.region_blocked",
        "The practice's Twilio account may not text this country. Please call, or ask the "
        "administrator to enable the region in Twilio's geo permissions.",
    ),
    21606: (
        "sms.bad_sender",
        "The practice's sending number cannot send texts. Please ask the administrator to check "
        "CLINICFLOW_TWILIO_FROM_NUMBER.",
    ),
    20003: (
        "sms.auth_failed",
        "Twilio refused clinicflow's credentials. Please ask the administrator to check "
        "CLINICFLOW_TWILIO_ACCOUNT_SID and CLINICFLOW_TWILIO_AUTH_TOKEN.",
    ),
}


def error_for_rest(exc: TwilioRestException) -> ClinicflowError:
    """Translate a Twilio error answer to a SmsError, or OutcomeUnknownError when ambiguous."""
    status = int(exc.status)
    twilio_code = int(exc.code) if exc.code is not None else None
    if twilio_code in _PERMANENT:
        code, message = _PERMANENT[twilio_code]
        return SmsError(message, code=code, retryable=False, status=status, twilio_code=twilio_code)
    if status == 401:
        code, message = _PERMANENT[20003]
        return SmsError(message, code=code, retryable=False, status=status)
    if status in (429, 503):
        # Throttled or shedding load: Twilio refused the request before creating anything.
        return SmsError(
            f"Twilio is busy (HTTP {status}); the text will be tried again shortly.",
            code="sms.throttled" if status == 429 else "sms.unavailable",
            retryable=True,
            status=status,
            twilio_code=twilio_code,
        )
    if status >= 500:
        # A 500/502/504 may come after the message was created (a gateway timing out on a slow
        # back end), so resending blindly could text the patient twice: reconcile first.
        return OutcomeUnknownError(
            f"Twilio answered HTTP {status}; the text may or may not have gone. clinicflow "
            "checks Twilio's message log before trying again.",
            code="sms.outcome_unknown",
        )
    return SmsError(
        f"Twilio refused the text (error {twilio_code}, HTTP {status}). Please call the patient "
        f"and see https://www.twilio.com/docs/errors/{twilio_code} for the reason.",
        code="sms.rejected",
        retryable=False,
        status=status,
        twilio_code=twilio_code,
    )


def error_for_transport(exc: OSError) -> ClinicflowError:
    """Translate a network failure: before connecting nothing was sent, after it we cannot tell."""
    reason = exc.args[0].reason if exc.args and isinstance(exc.args[0], MaxRetryError) else None
    # urllib3's NewConnectionError (refused, DNS) is a ConnectTimeoutError too: both fail before
    # a byte of the request was sent.
    if isinstance(reason, ConnectTimeoutError):
        return SmsError(
            "Twilio could not be reached; the text will be tried again shortly.",
            code="sms.unreachable_provider",
            retryable=True,
        )
    return OutcomeUnknownError(
        "The connection to Twilio failed while sending; the text may or may not have gone. "
        "clinicflow checks Twilio's message log before trying again.",
        code="sms.outcome_unknown",
    )


class RateLimiter:
    """A token bucket (one token, refilled `per_second` times a second) shared by threads.

    Each caller reserves the next free slot under the lock and sleeps outside it, so waiting
    threads do not hold each other up. It paces one process: with several worker processes on
    one number, give each `sms_per_second / processes`. (A Redis bucket would pace them jointly;
    not built, because one worker process is the supported deployment for now.)
    """

    def __init__(
        self, per_second: float, clock: Clock, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if per_second <= 0:
            raise ConfigError(
                f"CLINICFLOW_SMS_PER_SECOND must be above 0 (got {per_second}).",
                code="config.sms_per_second",
            )
        self.interval_s = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: float | None = None

    def wait(self) -> float:
        """Block until this caller may send; returns the seconds waited."""
        with self._lock:
            now = self._clock.monotonic()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + self.interval_s
        waited_s = slot - now
        if waited_s > 0:
            self._sleep(waited_s)
        return waited_s


_LIMITERS: dict[str, RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(sender: str, per_second: float, clock: Clock) -> RateLimiter:
    """The process-wide limiter of a sending number (every TwilioSms on it shares one).

    The first caller's `per_second` sticks: settings are built once per process.
    """
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(sender)
        if limiter is None:
            limiter = _LIMITERS[sender] = RateLimiter(per_second, clock)
        return limiter


class RedirectingHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio has no type hints
    """Twilio's HTTP client, with every https://*.twilio.com URL sent to `api_url` instead."""

    def __init__(self, api_url: str | None, timeout_s: float) -> None:
        super().__init__(timeout=timeout_s)
        self.api_url = api_url.rstrip("/") if api_url else None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        """Send the request, to the peer when one is configured."""
        if self.api_url is not None:
            url = _TWILIO_HOST.sub(self.api_url, url, count=1)
        return super().request(method, url, *args, **kwargs)


class TwilioSms:
    """Sends texts from the practice's number (or Messaging Service) through Twilio."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        *,
        public_url: str,
        api_url: str | None = None,
        per_second: float = 1.0,
        timeout_s: float = 15.0,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.sender = sender
        self.public_url = public_url.rstrip("/")
        self.limiter = limiter or limiter_for(sender, per_second, SystemClock())
        self._client = Client(
            account_sid, auth_token, http_client=RedirectingHttpClient(api_url, timeout_s)
        )

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> TwilioSms:
        """The channel as configured; ConfigError names a missing setting."""
        sid, token = settings.twilio_account_sid, settings.twilio_auth_token
        sender = settings.twilio_from_number
        if sid is None or token is None or sender is None:
            missing = [
                f"CLINICFLOW_{name.upper()}"
                for name in ("twilio_account_sid", "twilio_auth_token", "twilio_from_number")
                if getattr(settings, name) is None
            ]
            raise ConfigError(f"Twilio SMS needs {', '.join(missing)}.", code="config.twilio")
        return cls(
            sid,
            token.get_secret_value(),
            sender,
            public_url=settings.public_url,
            api_url=settings.twilio_api_url,
            limiter=limiter_for(sender, settings.sms_per_second, clock or SystemClock()),
        )

    @property
    def uses_messaging_service(self) -> bool:
        """True when the sender is a Messaging Service SID rather than a phone number."""
        return self.sender.startswith("MG")

    def status_callback_url(self, key: str) -> str:
        """Where Twilio reports this message's status; the tag ties the report to its effect."""
        return f"{self.public_url}{STATUS_PATH}?{KEY_TAG_PARAM}={callback_key_tag(key)}"

    def send(self, to: str, body: str, *, key: str) -> SentSms:
        """Create one message; SmsError if surely not sent, OutcomeUnknownError if unsure."""
        sender = (
            {"messaging_service_sid": self.sender}
            if self.uses_messaging_service
            else {"from_": self.sender}
        )
        self.limiter.wait()
        try:
            message = self._client.messages.create(
                to=to, body=body, status_callback=self.status_callback_url(key), **sender
            )
        except TwilioRestException as exc:
            raise error_for_rest(exc) from exc
        except OSError as exc:  # requests' errors are OSErrors; the library has no types
            raise error_for_transport(exc) from exc
        logger.info("sms accepted", extra={"effect_key": key, "message_sid": message.sid})
        return SentSms(str(message.sid), str(message.status))

    def find_sent(self, key: str, to: str, since: datetime, *, body: str) -> SentSms | None:
        """The message an earlier `send` for `key` created, or None if Twilio has none.

        Twilio has no idempotency key for Messages, and its Messages list does not return the
        StatusCallback URL that carries our key tag: the only fields we set that it returns are
        To, From (or MessagingServiceSid) and Body. So we match those, exactly, on messages
        created since the first attempt (less clock skew). Two effects with the same text to the
        same number in that window would match each other; our texts name the visit, so they
        differ. We filter on date_created ourselves because Twilio's DateSent filter only knows
        whole days and skips messages still queued (their date_sent is null).
        """
        try:
            for message in self._recent_messages(to, since - _CLOCK_SKEW):
                if self._is_ours(message, to, body):
                    logger.info(
                        "sms found on reconcile",
                        extra={"effect_key": key, "message_sid": message.sid},
                    )
                    return SentSms(str(message.sid), str(message.status))
        except TwilioRestException as exc:
            raise error_for_rest(exc) from exc
        except OSError as exc:
            raise error_for_transport(exc) from exc
        return None

    def _recent_messages(self, to: str, floor: datetime) -> Iterator[Any]:
        """Messages to `to`, newest first, down to `floor` (Twilio lists newest first)."""
        filters: dict[str, str] = {"to": to}
        if not self.uses_messaging_service:
            filters["from_"] = self.sender
        for message in self._client.messages.stream(limit=_SCAN_LIMIT, page_size=50, **filters):
            created_at = message.date_created
            if created_at is not None and created_at < floor:
                return
            yield message

    def _is_ours(self, message: Any, to: str, body: str) -> bool:
        if message.to != to or not str(message.direction or "").startswith("outbound"):
            return False
        if self.uses_messaging_service and message.messaging_service_sid != self.sender:
            return False
        stored = str(message.body or "")
        return stored in (body, _TRIAL_PREFIX + body)
