"""The red-flag lexicon: negation, history, general questions, hedging, Spanish and typing slips."""

from __future__ import annotations

import pytest

from clinicflow.automations.triage.lexicon import load_lexicon, parse_lexicon, red_flags
from clinicflow.errors import InputError

LEXICON = load_lexicon()


def _counted(text: str) -> set[str]:
    return {h.flag for h in red_flags(LEXICON, text) if h.counts}


def _ruled_out(text: str) -> dict[str, str | None]:
    return {h.flag: h.ruled_out for h in red_flags(LEXICON, text)}


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("X, can't come, chest pain", "chest-pain"),
        ("I've had chest pain since this morning and it is getting worse", "chest-pain"),
        ("cant breath", "breathing"),
        ("i cant breathe", "breathing"),
        ("my husband's face is drooping and his speech is slurred", "stroke"),
        ("I think my wife is having a stroak", "stroke"),
        ("i want to kill myself", "self-harm"),
        ("my throat is closing after I ate shrimp", "anaphylaxis"),
        ("my 6 week old has a fever of 100.8", "infant-fever"),
        ("I'm 20 weeks pregnant and bleeding", "pregnancy"),
        ("my son had a seizure", "seizure"),
        ("he passed out and won't wake up", "collapse"),
        ("no fever, chest pain since noon", "chest-pain"),  # the negation ends at the comma
        ("No, I have chest pain", "chest-pain"),
    ],
)
def test_english_red_flags_count_misspelt_or_mixed_with_a_request(text: str, flag: str) -> None:
    assert flag in _counted(text)


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("Tengo dolor en el pecho desde esta mañana", "chest-pain"),
        ("tengo dolor de pecho", "chest-pain"),
        ("no puedo respirar", "breathing"),
        ("me quiero morir", "self-harm"),
        ("A mi esposo se le cayó un lado de la cara y no puede hablar bien", "stroke"),
        ("mi bebé de 3 semanas de nacido tiene fiebre", "infant-fever"),
        ("estoy embarazada y tengo sangrado", "pregnancy"),
        ("se me cierra la garganta", "anaphylaxis"),
    ],
)
def test_spanish_red_flags_count_with_or_without_accents(text: str, flag: str) -> None:
    assert flag in _counted(text)
    assert flag in _counted(text.replace("é", "e").replace("ó", "o").replace("ñ", "n"))


@pytest.mark.parametrize(
    ("text", "flag", "why"),
    [
        ("denies chest pain", "chest-pain", "negated"),
        ("No chest pain, just a cough", "chest-pain", "negated"),
        ("no trouble breathing, only a stuffy nose", "breathing", "negated"),
        ("the chest pain went away yesterday", "chest-pain", "negated"),
        ("no tengo dolor de pecho", "chest-pain", "negated"),
        ("sin dificultad para respirar", "breathing", "negated"),
        ("my dad had a stroke in 2019, should I get checked?", "stroke", "history"),
        ("what are the signs of a stroke?", "stroke", "general question"),
    ],
)
def test_negated_past_and_general_mentions_are_found_but_not_counted(
    text: str, flag: str, why: str
) -> None:
    assert _ruled_out(text)[flag] == why
    assert flag not in _counted(text)


def test_hedging_never_cancels_a_red_flag_and_says_so() -> None:
    (hit,) = red_flags(LEXICON, "I think I might be having a heart attack")
    assert hit.counts
    assert hit.hedged
    assert "hedged, still counted" in hit.reason()


def test_a_slip_is_forgiven_only_in_long_words_with_the_same_first_letter() -> None:
    assert "seizure" in _counted("my son is having a siezure")  # two letters swapped
    assert not _counted("I painted my kitchen")  # "painted" is not "fainted"
    assert not _counted("poison ivy on my arm")


def test_a_lexicon_with_a_broken_flag_is_rejected_saying_which() -> None:
    with pytest.raises(InputError) as caught:
        parse_lexicon('[[flag]]\nid = "x"\nlabel = "X"\n', source="mine.toml")
    assert "red flag #1 (x)" in str(caught.value)
    with pytest.raises(InputError) as caught:
        parse_lexicon("not toml [", source="mine.toml")
    assert "mine.toml" in str(caught.value)


def test_a_practice_lexicon_adds_a_flag_a_clinician_wrote(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mine = tmp_path / "flags.toml"
    mine.write_text(
        '[[flag]]\nid = "sepsis"\nlabel = "Possible sepsis"\nen = ["mottled skin"]\n',
        encoding="utf-8",
    )
    lexicon = load_lexicon(str(mine))
    assert [h.flag for h in red_flags(lexicon, "his skin looks mottled skin")] == ["sepsis"]
