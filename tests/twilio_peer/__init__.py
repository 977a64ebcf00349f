"""A loopback server that speaks the part of Twilio's REST API clinicflow uses (Messages).

Written from Twilio's documentation of the Message resource (API version 2010-04-01), so the real
`twilio` client can be tested over HTTP:

    peer = TwilioPeer(account_sid="AC…", auth_token="…", numbers={"+15550001111"})
    with running_peer(peer) as api_url:  # "http://127.0.0.1:<port>"
        ...
        peer.post_status(sid, "delivered")  # a signed status callback to the message's URL

It also receives webhooks under /webhooks/ (so a test can aim callbacks at the peer itself and
read what arrived), and can fail on purpose: see `Fault`. A test module can keep one server and
give each test a fresh peer with `running_switch()` and `switch.use(peer)`.
"""

from tests.twilio_peer.peer import Fault, StoredMessage, TwilioPeer, WebhookReceipt
from tests.twilio_peer.server import PeerSwitch, running_peer, running_switch
from tests.twilio_peer.signing import twilio_signature

__all__ = [
    "Fault",
    "PeerSwitch",
    "StoredMessage",
    "TwilioPeer",
    "WebhookReceipt",
    "running_peer",
    "running_switch",
    "twilio_signature",
]
