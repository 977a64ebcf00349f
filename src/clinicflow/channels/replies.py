"""What a patient's text reply means: confirm, cancel, reschedule, opt out or in, help (pure).

Only a whole message that is one of our keywords counts; "I can't cancel, see you Tuesday" is
OTHER and goes to a person, because guessing wrong cancels a visit. Case, accents, surrounding
whitespace and punctuation do not matter ("Sí!", " c. ", "STOP").

Twilio's own keyword handling runs before our webhook and we must agree with it, or our records
would say "subscribed" while Twilio refuses to deliver (error 21610). Twilio's defaults on long
codes (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out and
https://help.twilio.com/articles/223134027-Twilio-support-for-opt-out-keywords-SMS-STOP-filtering):
opt-out STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT; opt-in START, YES, UNSTOP;
help HELP, INFO. Like ours, they act only on a single-word message.

Two of those words are also answers to a reminder, and both meanings hold at once:

- CANCEL is Twilio's opt-out *and* our "cancel my visit" reply. Twilio blocks the number the
  moment it arrives, whatever we do, so we record the opt-out (or our records would disagree
  with Twilio) and also cancel the visit the patient asked to cancel. The cancellation notice
  then cannot go out by text; the automation falls back to e-mail or a work item.
- YES re-subscribes the number at Twilio, and is our "confirm" reply: intent CONFIRM with
  `opts_in`.

Spanish: PARAR and ALTO opt out too (ours; Twilio's defaults are English-only, so the reply's
opt-out is recorded by us and honoured when we send, while Twilio still delivers).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Intent(StrEnum):
    """What a reply asks for."""

    CONFIRM = "confirm"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    STOP = "stop"
    START = "start"
    HELP = "help"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Classified:
    """A reply's intent, and whether it opts the sender out of texts (or back in)."""

    intent: Intent
    opts_out: bool = False
    opts_in: bool = False


_OTHER = Classified(Intent.OTHER)


def _table() -> dict[str, Classified]:
    families: list[tuple[Classified, tuple[str, ...]]] = [
        (
            Classified(Intent.CONFIRM),
            ("c", "y", "confirm", "confirmed", "si", "confirmo", "confirmar"),
        ),
        (Classified(Intent.CONFIRM, opts_in=True), ("yes",)),
        (Classified(Intent.CANCEL), ("x", "cancelar", "cancelo")),
        (Classified(Intent.CANCEL, opts_out=True), ("cancel",)),
        (Classified(Intent.RESCHEDULE), ("r", "reschedule", "cambiar", "reprogramar")),
        (
            Classified(Intent.STOP, opts_out=True),
            ("stop", "stopall", "unsubscribe", "end", "quit", "revoke", "optout", "parar", "alto"),
        ),
        (Classified(Intent.START, opts_in=True), ("start", "unstop")),
        (Classified(Intent.HELP), ("help", "info", "ayuda")),
    ]
    return {word: meaning for meaning, words in families for word in words}


KEYWORDS: dict[str, Classified] = _table()


def normalise(body: str) -> str:
    """The reply as compared with keywords: case-folded, accents and outer punctuation removed."""
    decomposed = unicodedata.normalize("NFKD", body.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    start, end = 0, len(bare)
    # Punctuation on either side ("¡Sí!", "C.", "'stop'") and whitespace, but nothing inside.
    while start < end and _is_trimmed(bare[start]):
        start += 1
    while end > start and _is_trimmed(bare[end - 1]):
        end -= 1
    return bare[start:end]


def _is_trimmed(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch).startswith("P")


def classify(body: str) -> Classified:
    """The meaning of a whole reply; OTHER unless the whole message is one keyword."""
    return KEYWORDS.get(normalise(body), _OTHER)
