"""Reading a text reply: each keyword family, decorations ignored, free text never guessed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinicflow.channels.replies import KEYWORDS, Classified, Intent, classify

CONFIRM = Classified(Intent.CONFIRM)
CANCEL = Classified(Intent.CANCEL)
RESCHEDULE = Classified(Intent.RESCHEDULE)
OPT_OUT = Classified(Intent.STOP, opts_out=True)
OPT_IN = Classified(Intent.START, opts_in=True)
HELP = Classified(Intent.HELP)
OTHER = Classified(Intent.OTHER)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("C", CONFIRM),
        ("Y", CONFIRM),
        ("confirm", CONFIRM),
        ("Confirmed", CONFIRM),
        ("SI", CONFIRM),
        ("Sí", CONFIRM),
        ("confirmo", CONFIRM),
        ("Confirmar", CONFIRM),
        ("X", CANCEL),
        ("cancelar", CANCEL),
        ("Cancelo", CANCEL),
        ("R", RESCHEDULE),
        ("reschedule", RESCHEDULE),
        ("Cambiar", RESCHEDULE),
        ("REPROGRAMAR", RESCHEDULE),
        ("STOP", OPT_OUT),
        ("stopall", OPT_OUT),
        ("Unsubscribe", OPT_OUT),
        ("end", OPT_OUT),
        ("QUIT", OPT_OUT),
        ("revoke", OPT_OUT),
        ("optout", OPT_OUT),
        ("Parar", OPT_OUT),
        ("ALTO", OPT_OUT),
        ("START", OPT_IN),
        ("unstop", OPT_IN),
        ("HELP", HELP),
        ("info", HELP),
        ("Ayuda", HELP),
    ],
)
def test_each_keyword_family_reads_as_its_intent(body: str, expected: Classified) -> None:
    assert classify(body) == expected


def test_cancel_cancels_the_visit_and_opts_out_as_twilio_does() -> None:
    assert classify("CANCEL") == Classified(Intent.CANCEL, opts_out=True)


def test_yes_confirms_and_opts_back_in_as_twilio_does() -> None:
    assert classify("Yes") == Classified(Intent.CONFIRM, opts_in=True)


def test_spanish_cancel_does_not_opt_out_because_twilio_does_not_block_it() -> None:
    assert classify("CANCELAR") == Classified(Intent.CANCEL, opts_out=False)


@pytest.mark.parametrize(
    "body", ["  c  ", "C.", "c!", "¡Sí!", "SÍ", "sI", "'stop'", "Stop!!", "\tHELP?\n", "X…"]
)
def test_case_accents_whitespace_and_outer_punctuation_do_not_matter(body: str) -> None:
    assert classify(body).intent is not Intent.OTHER


@pytest.mark.parametrize(
    "body",
    [
        "I can't make it, please cancel",
        "cancel my appointment",
        "Yes please",
        "STOP ALL",
        "stop texting me",
        "c c",
        "help me my chest hurts",
        "ok",
        "",
        "   ",
        "?!",
        "s.t.o.p",
        "X-ray results?",
    ],
)
def test_free_text_that_merely_contains_a_keyword_is_other(body: str) -> None:
    assert classify(body) == OTHER


def _decorate(word: str, flips: list[bool], left: str, right: str) -> str:
    """`word` with the letters `flips` marks in upper case, between `left` and `right`."""
    padded = (flips + [False] * len(word))[: len(word)]
    cased = "".join(ch.upper() if up else ch for ch, up in zip(word, padded, strict=True))
    return left + cased + right


@given(
    word=st.sampled_from(sorted(KEYWORDS)),
    flips=st.lists(st.booleans(), max_size=12),
    left=st.text(alphabet=" \t\n¡¿\"'(", max_size=3),
    right=st.text(alphabet=" \t\n.!?,;)\"'…", max_size=3),
)
def test_any_casing_and_outer_punctuation_of_a_keyword_reads_the_same(
    word: str, flips: list[bool], left: str, right: str
) -> None:
    assert classify(_decorate(word, flips, left, right)) == KEYWORDS[word]


@given(
    first=st.sampled_from(sorted(KEYWORDS)),
    rest=st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=20),
)
def test_a_keyword_followed_by_more_words_is_never_acted_on(first: str, rest: str) -> None:
    assert classify(f"{first} {rest}") == OTHER


@given(st.text(max_size=40))
def test_no_reply_opts_out_and_in_at_once_and_only_keywords_change_consent(body: str) -> None:
    meaning = classify(body)
    assert not (meaning.opts_out and meaning.opts_in)
    if meaning.intent is Intent.OTHER:
        assert not meaning.opts_out
        assert not meaning.opts_in
