"""Twilio's webhook signature, written from its documentation rather than taken from the library.

"Take the full URL of the request, sort the POST fields by name, append each name and value to
the URL, sign the result with HMAC-SHA1 keyed by your auth token, and Base64-encode it." Doing
it independently here means the tests check clinicflow against the documented algorithm, not the
library against itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping


def twilio_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    text = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
