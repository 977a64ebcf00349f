"""New-password rules (NIST SP 800-63B 5.1.1.2) and argon2id hashing."""

from __future__ import annotations

import argon2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinicflow.errors import InputError, SecurityError
from clinicflow.security import passwords
from clinicflow.security.passwords import (
    PRODUCTION_PARAMETERS,
    PasswordHashing,
    check_new_password,
    hashing_for,
)

GOOD = "correct horse battery staple"


def _refusal_code(
    password: str, *, username: str = "jrivera", context: tuple[str, ...] = ()
) -> str:
    with pytest.raises(InputError) as caught:
        check_new_password(password, username=username, context=context)
    assert caught.value.where == "password"
    assert caught.value.message
    return caught.value.code


def test_a_long_passphrase_is_accepted() -> None:
    check_new_password(GOOD, username="jrivera", context=("Riverside Family Clinic",))


def test_eleven_characters_are_too_short_and_twelve_are_enough() -> None:
    assert _refusal_code("tqz8vmw3k2x") == "password.too_short"
    check_new_password("tqz8vmw3k2xp", username="jrivera")


def test_the_too_short_message_says_how_long_a_password_must_be() -> None:
    with pytest.raises(InputError) as caught:
        check_new_password("short", username="jrivera")
    assert "at least 12 characters" in caught.value.message


def test_length_counts_code_points_after_nfkc() -> None:
    # Ten letters plus U+FB01, the "fi" ligature that NFKC turns into two letters: twelve.
    check_new_password("tqzvmwkxpb\ufb01", username="jrivera")
    # Combining accents are separate code points until NFKC composes them: 11 after it.
    assert _refusal_code("tqzvmwkxpb" + "e\u0301") == "password.too_short"


def test_128_characters_are_allowed_and_129_are_too_long() -> None:
    check_new_password("horse battery staple " * 6 + "x" * 2, username="jrivera")
    assert _refusal_code("horse battery staple " * 6 + "x" * 3) == "password.too_long"


def test_a_huge_input_is_refused_as_too_long() -> None:
    assert _refusal_code("q" * 1_000_000) == "password.too_long"


@pytest.mark.parametrize(
    "password",
    ["baseball1234", "BASEBALL1234", "password123456!", "!!2024monkey!!", "123456!!!!!!!"],
)
def test_a_listed_password_alone_or_padded_with_digits_and_symbols_is_common(
    password: str,
) -> None:
    assert _refusal_code(password) == "password.common"


def test_a_listed_word_inside_a_longer_passphrase_is_not_refused() -> None:
    check_new_password("my dragon eats blue tulips", username="jrivera")


def test_the_common_list_is_loaded_once_into_a_frozenset() -> None:
    first = passwords._common_passwords()
    assert isinstance(first, frozenset)
    assert len(first) > 25_000
    assert passwords._common_passwords() is first


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaaaa",
        "............",
        "123456789012",
        "abcdefghijkl",
        "LKJIHGFEDCBA",
        "abcabcabcabc",
    ],
)
def test_a_repeated_character_or_a_straight_run_is_repetitive(password: str) -> None:
    assert _refusal_code(password) == "password.repetitive"


@pytest.mark.parametrize(
    ("password", "username", "context"),
    [
        ("JRivera-loves-tulips", "jrivera", ()),
        ("rivera tulips in spring", "jane.rivera", ()),
        ("RiversideFamilyClinic!", "jrivera", ("Riverside Family Clinic",)),
        ("my clinicflow account pw", "jrivera", ()),
    ],
)
def test_the_username_practice_name_or_service_name_is_refused(
    password: str, username: str, context: tuple[str, ...]
) -> None:
    assert _refusal_code(password, username=username, context=context) == "password.context"


def test_an_ordinary_word_from_the_practice_name_is_still_allowed() -> None:
    check_new_password("family trip to lisbon", username="jrivera", context=("Riverside Family",))


def test_the_context_message_names_the_word_to_leave_out() -> None:
    with pytest.raises(InputError) as caught:
        check_new_password("jrivera tulips spring", username="jrivera")
    assert '"jrivera"' in caught.value.message


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 !?", min_size=12, max_size=128))
def test_checking_a_password_either_passes_or_raises_a_password_error(password: str) -> None:
    try:
        check_new_password(password, username="jrivera")
    except InputError as exc:
        code = exc.code
    else:
        return
    assert code.startswith("password.")


@given(st.text(min_size=1, max_size=40))
def test_a_password_hashed_in_test_profile_verifies_and_another_does_not(password: str) -> None:
    hashing = hashing_for("test")
    stored = hashing.hash(password)
    assert hashing.verify(stored, password)
    assert not hashing.verify(stored, password + "x")


def test_a_wrong_password_returns_false_without_raising() -> None:
    hashing = hashing_for("test")
    assert not hashing.verify(hashing.hash(GOOD), "correct horse battery stapler")


def test_a_password_typed_in_another_unicode_form_still_verifies() -> None:
    hashing = hashing_for("test")
    stored = hashing.hash("caf\u00e9 au lait tous les jours")
    assert hashing.verify(stored, "cafe\u0301 au lait tous les jours")


def test_an_unknown_user_is_refused_after_a_real_argon2_verify(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hashing = PasswordHashing(hashing_for("test").parameters)
    verified: list[str] = []
    real_verify = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        verified.append(str(hash))
        return real_verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    assert not hashing.verify(None, GOOD)
    assert not hashing.verify(None, GOOD)
    assert len(verified) == 2
    assert verified[0] == verified[1]
    assert verified[0].startswith("$argon2id$v=19$m=8,t=1,p=1$")


def test_an_unknown_user_is_refused_even_when_the_password_is_the_dummys() -> None:
    hashing = PasswordHashing(hashing_for("test").parameters)
    hashing.verify(None, "x")
    assert hashing._dummy_hash is not None
    assert not hashing.verify(None, "anything at all")


def test_a_damaged_stored_hash_raises_a_security_error_not_false() -> None:
    with pytest.raises(SecurityError) as caught:
        hashing_for("test").verify("not-a-hash", GOOD)
    assert caught.value.code == "password.stored_hash_invalid"


def test_a_hash_with_other_parameters_needs_a_rehash() -> None:
    test_hashing = hashing_for("test")
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=16)
    assert test_hashing.needs_rehash(weaker.hash(GOOD))
    assert not test_hashing.needs_rehash(test_hashing.hash(GOOD))
    assert test_hashing.needs_rehash("$2b$12$an.old.bcrypt.hash")


def test_a_test_profile_hash_needs_a_rehash_under_production_parameters() -> None:
    stored = hashing_for("test").hash(GOOD)
    assert PasswordHashing(PRODUCTION_PARAMETERS).needs_rehash(stored)


def test_hashing_for_returns_one_instance_per_profile() -> None:
    assert hashing_for("test") is hashing_for("test")


def test_production_parameters_are_argon2id_with_64_mib_and_three_passes() -> None:
    assert PRODUCTION_PARAMETERS.type is argon2.Type.ID
    assert PRODUCTION_PARAMETERS.memory_cost >= 64 * 1024
    assert PRODUCTION_PARAMETERS.time_cost >= 3
    assert PRODUCTION_PARAMETERS == argon2.profiles.RFC_9106_LOW_MEMORY
    production = hashing_for("production")
    assert production.parameters == PRODUCTION_PARAMETERS
    stored = production.hash(GOOD)  # the one production-cost hash in the suite (~0.1-0.3 s)
    assert argon2.extract_parameters(stored) == PRODUCTION_PARAMETERS
    assert not production.needs_rehash(stored)


def test_at_most_four_hashes_run_at_once() -> None:
    slots = passwords._HASH_SLOTS
    for _ in range(4):
        assert slots.acquire(blocking=False)
    try:
        assert not slots.acquire(blocking=False)
    finally:
        for _ in range(4):
            slots.release()
