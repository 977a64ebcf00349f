"""A message as the triage layers read it: folded words in clauses (pure).

Case, accents and apostrophes do not matter ("Can't" is "cant", "respiración" is "respiracion").
Clauses end at . , ; : ! ? and newlines (not at brackets: "a stroke (TIA) in 2018" is one
clause), and at "but", "however", "pero", "aunque": a negation or a history word reaches only
to the end of its clause, so "no fever, chest pain" still flags the chest pain. Splitting at
commas is deliberately eager: it can only keep a red flag, never hide one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_APOSTROPHES = re.compile(r"['\u2019\u2018`\u00b4]")
_CLAUSE_END = re.compile(r"[.,;:!?\n\u00a1\u00bf]+")
_WORD = re.compile(r"[a-z0-9]+")
CLAUSE_WORDS = frozenset({"but", "however", "although", "though", "pero", "aunque", "sino"})


@dataclass(frozen=True, slots=True)
class Folded:
    """The message's words in order, each with the index of its clause."""

    words: tuple[str, ...]
    clauses: tuple[int, ...]

    def clause_of(self, position: int) -> int:
        """The clause the word at `position` belongs to."""
        return self.clauses[position]


def fold(text: str) -> str:
    """Case-folded, accents removed, apostrophes dropped (the form the lexicon is written in)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _APOSTROPHES.sub("", bare)


def words_of(text: str) -> tuple[str, ...]:
    """The folded words of a lexicon phrase (no clauses)."""
    return tuple(_WORD.findall(fold(text)))


def folded(text: str) -> Folded:
    """The message's words and clause indexes."""
    words: list[str] = []
    clauses: list[int] = []
    clause = 0
    for part in _CLAUSE_END.split(fold(text)):
        for word in _WORD.findall(part):
            if word in CLAUSE_WORDS:
                clause += 1
                continue
            words.append(word)
            clauses.append(clause)
        clause += 1
    return Folded(tuple(words), tuple(clauses))


_SPANISH = frozenset(
    [
        "el",
        "la",
        "los",
        "las",
        "de",
        "del",
        "que",
        "y",
        "en",
        "un",
        "una",
        "por",
        "para",
        "con",
        "mi",
        "me",
        "mis",
        "tengo",
        "tiene",
        "esta",
        "estoy",
        "usted",
        "gracias",
        "hola",
        "cita",
        "favor",
        "puedo",
        "necesito",
        "porque",
        "pero",
        "muy",
        "mas",
        "hoy",
        "manana",
        "ayer",
    ]
)
_ENGLISH = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "of",
        "to",
        "in",
        "my",
        "i",
        "is",
        "it",
        "for",
        "with",
        "have",
        "has",
        "on",
        "at",
        "you",
        "your",
        "me",
        "can",
        "this",
        "that",
        "please",
        "thanks",
        "hi",
        "appointment",
        "need",
        "today",
        "tomorrow",
    ]
)


def guess_language(text: str) -> str:
    """ "es" when more of the words are common Spanish ones than English ones, else "en" (for a
    message whose patient's language the replica does not hold)."""
    words = folded(text).words
    spanish = sum(w in _SPANISH for w in words)
    english = sum(w in _ENGLISH for w in words)
    return "es" if spanish > english else "en"
