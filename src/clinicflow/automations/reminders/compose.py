"""Who gets which reminder over which channel, and which visits share a message (pure).

- The touchpoint's channel is used when the patient has it and has not opted out of it; else the
  patient's other channel (an e-mail carries a confirm link, so a reply is still possible); a
  patient reachable by neither (a landline only) gets no message.
- Visits due at the same touchpoint for the same contact (a family sharing a phone, two visits
  the same day) go out as one message listing them all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from clinicflow.automations.reminders.policy import Planned
from clinicflow.automations.reminders.visits import Contact, Upcoming
from clinicflow.engine.payloads import MessageChannel


@dataclass(frozen=True, slots=True)
class Route:
    """Where one reminder goes: the channel, the address and its blind index."""

    channel: MessageChannel
    address: str
    digest: str


@dataclass(frozen=True, slots=True)
class Due:
    """A touchpoint due now for one visit, with the route it takes."""

    upcoming: Upcoming
    planned: Planned
    contact: Contact
    route: Route


def choose_route(
    wanted: MessageChannel,
    contact: Contact,
    digests: dict[tuple[MessageChannel, str], str],
    opted_out: Collection[str],
) -> Route | None:
    """The route for a touchpoint on `wanted`, falling back to the other channel (see above).

    `digests` maps (channel, address) to its blind index; `opted_out` holds opted-out digests.
    """
    addresses = {MessageChannel.SMS: contact.mobile, MessageChannel.EMAIL: contact.email}
    other = MessageChannel.EMAIL if wanted is MessageChannel.SMS else MessageChannel.SMS
    for channel in (wanted, other):
        address = addresses[channel]
        if address is None:
            continue
        digest = digests[(channel, address)]
        if digest not in opted_out:
            return Route(channel, address, digest)
    return None


GroupKey = tuple[MessageChannel, str, str]  # (channel, contact digest, touchpoint name)


def group_messages(due: Iterable[Due]) -> dict[GroupKey, list[Due]]:
    """One message per (channel, contact, touchpoint), listing its visits in time order."""
    groups: dict[GroupKey, list[Due]] = {}
    for item in due:
        key = (item.route.channel, item.route.digest, item.planned.touchpoint.name)
        groups.setdefault(key, []).append(item)
    for items in groups.values():
        items.sort(key=lambda d: (d.upcoming.visit.start_at, d.upcoming.visit.appointment_id))
    return groups
