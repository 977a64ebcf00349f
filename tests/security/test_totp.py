"""TOTP codes (RFC 6238, each step accepted once) and one-time recovery codes."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from clinicflow.security.totp import (
    RECOVERY_ALPHABET,
    STEP_S,
    hash_recovery_code,
    match_recovery_code,
    new_recovery_codes,
    new_salt,
    new_totp_secret,
    provisioning_uri,
    qr_svg,
    verify_totp,
)

# The key an authenticator app shares with us (a well-known example value, 160 bits).
APP_KEY = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# 15 s into a step, so one step either side is a clean +/- 30 s.
NOW = datetime(2026, 12, 2, 9, 0, 15, tzinfo=UTC)
NOW_STEP = int(NOW.timestamp()) // STEP_S


def _code_at(at: datetime) -> str:
    return pyotp.TOTP(APP_KEY).at(at)


def test_a_new_secret_is_160_bits_of_base32() -> None:
    secret = new_totp_secret()
    assert len(base64.b32decode(secret)) == 20
    assert new_totp_secret() != secret


def test_the_provisioning_uri_names_the_user_and_the_issuer() -> None:
    uri = provisioning_uri(APP_KEY, username="jrivera", issuer="clinicflow (Riverside)")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth"
    assert parsed.netloc == "totp"
    query = parse_qs(parsed.query)
    assert query["secret"] == [APP_KEY]
    assert query["issuer"] == ["clinicflow (Riverside)"]
    assert "jrivera" in parsed.path


def test_the_qr_code_is_an_inline_svg_with_a_title_and_no_data_uri() -> None:
    svg = qr_svg(provisioning_uri(APP_KEY, username="jrivera", issuer="clinicflow"))
    assert svg.startswith("<svg ")
    assert svg.endswith("</svg>")
    assert "<title>" in svg
    assert "<?xml" not in svg
    assert "data:" not in svg
    assert APP_KEY not in svg
    assert "<script" not in svg


def test_the_qr_code_title_is_escaped() -> None:
    svg = qr_svg("otpauth://totp/x?secret=" + APP_KEY, title="<b>scan</b>")
    assert "<b>" not in svg
    assert "&lt;b&gt;scan&lt;/b&gt;" in svg


def test_the_current_code_is_accepted_and_its_step_returned() -> None:
    assert verify_totp(APP_KEY, _code_at(NOW), now=NOW, last_step=None) == NOW_STEP


def test_a_code_typed_with_spaces_is_accepted() -> None:
    code = _code_at(NOW)
    assert verify_totp(APP_KEY, f" {code[:3]} {code[3:]} ", now=NOW, last_step=None) == NOW_STEP


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "12345a", "\uff11\uff12\uff13\uff14\uff15\uff16", "\u0661" * 6]
)
def test_anything_but_six_ascii_digits_is_refused(code: str) -> None:
    assert verify_totp(APP_KEY, code, now=NOW, last_step=None) is None


def test_a_wrong_code_is_refused() -> None:
    right = _code_at(NOW)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert verify_totp(APP_KEY, wrong, now=NOW, last_step=None) is None


def test_a_code_from_the_previous_step_is_accepted_once() -> None:
    code = _code_at(NOW - timedelta(seconds=STEP_S))
    step = verify_totp(APP_KEY, code, now=NOW, last_step=None)
    assert step == NOW_STEP - 1
    assert verify_totp(APP_KEY, code, now=NOW, last_step=step) is None


def test_a_code_from_the_next_step_is_accepted_for_a_fast_phone_clock() -> None:
    code = _code_at(NOW + timedelta(seconds=STEP_S))
    assert verify_totp(APP_KEY, code, now=NOW, last_step=None) == NOW_STEP + 1


def test_a_code_from_two_steps_ago_is_refused() -> None:
    code = _code_at(NOW - timedelta(seconds=2 * STEP_S))
    assert verify_totp(APP_KEY, code, now=NOW, last_step=None) is None


def test_a_replayed_code_is_refused_within_its_step() -> None:
    code = _code_at(NOW)
    step = verify_totp(APP_KEY, code, now=NOW, last_step=None)
    assert verify_totp(APP_KEY, code, now=NOW + timedelta(seconds=5), last_step=step) is None


def test_an_older_code_is_refused_once_a_newer_step_was_used() -> None:
    previous = _code_at(NOW - timedelta(seconds=STEP_S))
    assert verify_totp(APP_KEY, previous, now=NOW, last_step=NOW_STEP) is None


def test_the_next_steps_code_is_accepted_after_this_one_was_used() -> None:
    later = NOW + timedelta(seconds=STEP_S)
    step = verify_totp(APP_KEY, _code_at(later), now=later, last_step=NOW_STEP)
    assert step == NOW_STEP + 1


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        verify_totp(APP_KEY, "123456", now=NOW.replace(tzinfo=None), last_step=None)


@given(st.integers(min_value=10**9, max_value=2**32), st.integers(min_value=-5, max_value=5))
def test_a_code_is_accepted_exactly_within_one_step_either_side(at_s: int, offset: int) -> None:
    now = datetime.fromtimestamp(at_s, tz=UTC)
    code = _code_at(now + timedelta(seconds=offset * STEP_S))
    step = verify_totp(APP_KEY, code, now=now, last_step=None)
    current = at_s // STEP_S
    if abs(offset) <= 1:
        assert step is not None
        assert step == current + offset or pyotp.TOTP(APP_KEY).at(step * STEP_S) == code
    else:
        # Another step in the window can share the code by chance (1 in 10^6 per step).
        assert step is None or pyotp.TOTP(APP_KEY).at(step * STEP_S) == code


def test_recovery_codes_are_ten_distinct_groups_of_four_unambiguous_characters() -> None:
    codes = new_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    pattern = re.compile(f"[{RECOVERY_ALPHABET}]{{4}}(-[{RECOVERY_ALPHABET}]{{4}}){{3}}")
    assert all(pattern.fullmatch(code) for code in codes)
    assert not set("ilou") & set(RECOVERY_ALPHABET)


def test_a_recovery_code_carries_at_least_80_bits() -> None:
    code = new_recovery_codes(1)[0]
    symbols = len(code.replace("-", ""))
    assert symbols * (len(RECOVERY_ALPHABET).bit_length() - 1) >= 80


def test_a_recovery_code_matches_whatever_case_hyphens_and_spaces_are_typed() -> None:
    salt = new_salt()
    code = "7k2q-9m4x-ht3b-0pzr"
    stored = hash_recovery_code(code, salt=salt)
    for typed in ["7K2Q9M4XHT3B0PZR", "7k2q 9m4x ht3b 0pzr", " 7k2q-9m4x-ht3b-0pzr\n"]:
        assert match_recovery_code(typed, salt=salt, unused_hashes=[stored]) == stored


def test_lookalike_letters_in_a_typed_recovery_code_read_as_digits() -> None:
    salt = new_salt()
    stored = hash_recovery_code("1k2q-9m4x-ht3b-0pzr", salt=salt)
    assert match_recovery_code("lk2q-9m4x-ht3b-Opzr", salt=salt, unused_hashes=[stored]) == stored


def test_a_recovery_code_works_once() -> None:
    salt = new_salt()
    codes = new_recovery_codes()
    unused = [hash_recovery_code(c, salt=salt) for c in codes]
    used = match_recovery_code(codes[3], salt=salt, unused_hashes=unused)
    assert used == unused[3]
    unused.remove(used)
    assert match_recovery_code(codes[3], salt=salt, unused_hashes=unused) is None
    assert match_recovery_code(codes[4], salt=salt, unused_hashes=unused) is not None


def test_a_recovery_code_does_not_match_under_another_users_salt() -> None:
    code = new_recovery_codes(1)[0]
    stored = hash_recovery_code(code, salt=new_salt())
    assert match_recovery_code(code, salt=new_salt(), unused_hashes=[stored]) is None


@pytest.mark.parametrize("typed", ["", "abcd", "7k2q-9m4x-ht3b-0pz", "7k2q-9m4x-ht3b-0pzré"])
def test_a_malformed_recovery_code_matches_nothing(typed: str) -> None:
    salt = new_salt()
    stored = hash_recovery_code("7k2q-9m4x-ht3b-0pzr", salt=salt)
    assert match_recovery_code(typed, salt=salt, unused_hashes=[stored]) is None


@given(st.binary(min_size=16, max_size=16), st.data())
def test_any_recovery_code_matches_its_own_hash_and_no_other(
    salt: bytes, data: st.DataObject
) -> None:
    codes = new_recovery_codes(3)
    assume(len(set(codes)) == 3)
    stored = [hash_recovery_code(c, salt=salt) for c in codes]
    index = data.draw(st.integers(min_value=0, max_value=2))
    assert match_recovery_code(codes[index], salt=salt, unused_hashes=stored) == stored[index]
    others = stored[:index] + stored[index + 1 :]
    assert match_recovery_code(codes[index], salt=salt, unused_hashes=others) is None


def test_new_salts_are_16_random_bytes() -> None:
    assert len(new_salt()) == 16
    assert new_salt() != new_salt()
