"""waitlist-backfill (issue 7): offer a freed slot to waiting patients, best fit first, in waves.

The pure decisions: who may be offered a slot (`eligible`), in what order (`rank`, with
`WaitlistIndex` to look at the right entries only) and when (`offer_waves`). Recording offers and
settling claims is `claims.py`. No automation is registered yet.
"""

from clinicflow.automations.waitlist.entries import (
    Availability,
    EntryId,
    FreedSlot,
    PatientId,
    WaitlistEntry,
)
from clinicflow.automations.waitlist.index import WaitlistIndex
from clinicflow.automations.waitlist.rules import (
    Fit,
    Ineligible,
    RankedEntry,
    RankingPolicy,
    Weights,
    eligible,
    rank,
)
from clinicflow.automations.waitlist.waves import Wave, offer_waves

__all__ = [
    "Availability",
    "EntryId",
    "Fit",
    "FreedSlot",
    "Ineligible",
    "PatientId",
    "RankedEntry",
    "RankingPolicy",
    "WaitlistEntry",
    "WaitlistIndex",
    "Wave",
    "Weights",
    "eligible",
    "offer_waves",
    "rank",
]
