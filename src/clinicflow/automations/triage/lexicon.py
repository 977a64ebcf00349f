"""The red-flag layer: the clinician-editable lexicon (`data/red_flags.toml`) and its matcher.

Pure: a `Lexicon` is loaded once from TOML, and `red_flags(lexicon, text)` returns every match
with why it counts or does not (negated, history, a general question). The file's own header
says how matching works, for the clinician who reviews it; this module is that description in
code. Words of five letters or more may be one slip off (a letter missing, extra, wrong, or two
swapped: "breth", "siezure") when the first letter agrees, which catches most typing slips
without turning "painted" into "fainted"; misspellings further off ("stroak") are listed in
the file as phrases of their own.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from rapidfuzz.distance import OSA

from clinicflow.automations.triage.text import fold, folded, words_of
from clinicflow.errors import InputError

Phrase = tuple[str, ...]
LANGUAGES = ("en", "es")
MAX_GAP = 2  # other words allowed between two words of a phrase
NEGATION_REACH = 5  # words before a match that a negation may stand
FUZZY_FROM = 5  # letters a word needs before one slip is forgiven


@dataclass(frozen=True, slots=True)
class Flag:
    """One red flag: phrases any of which match, or groups all of which must match."""

    id: str
    label: str
    phrases: tuple[Phrase, ...]
    all_of: tuple[tuple[Phrase, ...], ...]


@dataclass(frozen=True, slots=True)
class Modifiers:
    """Words that make a match not count (negation, history, general) or that hedge it."""

    negation_before: tuple[Phrase, ...]
    negation_after: tuple[Phrase, ...]
    history: tuple[Phrase, ...]
    general: tuple[Phrase, ...]
    hedging: tuple[Phrase, ...]


class WordMatcher:
    """Which lexicon words a message's word stands for (itself, or one slip away), remembered:
    messages reuse few words, and each is compared with the vocabulary once."""

    def __init__(self, vocabulary: Iterable[str], not_slips: Iterable[str] = ()) -> None:
        self._not_slips = frozenset(not_slips)
        self._by_initial: dict[str, list[str]] = {}
        for word in sorted(set(vocabulary)):
            self._by_initial.setdefault(word[:1], []).append(word)
        self._known: dict[str, frozenset[str]] = {}

    def __call__(self, word: str) -> frozenset[str]:
        known = self._known.get(word)
        if known is None:
            known = frozenset(
                wanted
                for wanted in self._by_initial.get(word[:1], ())
                if wanted == word
                or (
                    word not in self._not_slips
                    and len(wanted) >= FUZZY_FROM
                    and abs(len(wanted) - len(word)) <= 1
                    and OSA.distance(word, wanted, score_cutoff=1) <= 1
                )
            )
            if len(self._known) < 200_000:  # bounded: a flood of unique words cannot grow it
                self._known[word] = known
        return known


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The red flags and their modifiers, both languages merged (messages mix them)."""

    flags: tuple[Flag, ...]
    modifiers: Modifiers
    source: str
    matcher: WordMatcher = field(compare=False, repr=False, default=WordMatcher(()))
    # Each flag phrase by its first word, so a message is searched only for what it could hold.
    index: dict[str, frozenset[Phrase]] = field(compare=False, repr=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scan:
    """A message's words, clauses and the lexicon words each stands for."""

    words: tuple[str, ...]
    clauses: tuple[int, ...]
    means: tuple[frozenset[str], ...]
    # Every lexicon word the message stands for, and its own words: a phrase with a word
    # outside these cannot match, so most phrases are passed over without a search.
    present: frozenset[str] = frozenset()
    spelt: frozenset[str] = frozenset()

    def part(self, start: int, end: int) -> Scan:
        """Words start..end-1 as a scan of their own."""
        means = self.means[start:end]
        words = self.words[start:end]
        return Scan(words, self.clauses[start:end], means, _union(means), frozenset(words))


def _union(means: Sequence[frozenset[str]]) -> frozenset[str]:
    return frozenset().union(*means) if means else frozenset()


@dataclass(frozen=True, slots=True)
class Hit:
    """A flag's phrase found in a message; `counts` unless `ruled_out` says why not."""

    flag: str
    label: str
    phrase: str
    ruled_out: str | None = None  # "negated", "history", "general question"
    hedged: bool = False

    @property
    def counts(self) -> bool:
        """True when this match makes the message urgent."""
        return self.ruled_out is None

    def reason(self) -> str:
        """The hit as a reviewer reads it."""
        base = f"red flag {self.flag}: \u201c{self.phrase}\u201d"
        if self.ruled_out:
            return f"{base} not counted ({self.ruled_out})"
        return f"{base} (hedged, still counted)" if self.hedged else base


def _phrases(table: Mapping[str, Any], key: str, where: str) -> tuple[Phrase, ...]:
    found: list[Phrase] = []
    for language in LANGUAGES:
        values = table.get(key, {})
        listed = values.get(language, []) if isinstance(values, dict) else []
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise InputError(f"{key}.{language} must be a list of phrases", where=where)
        found.extend(p for p in (words_of(v) for v in listed) if p)
    return tuple(found)


def _groups(entry: Mapping[str, Any], where: str) -> tuple[tuple[Phrase, ...], ...]:
    """`all_of` groups, group k of each language merged: a Spanish infant may have a "fever"."""
    by_language = {
        language: [tuple(p for p in (words_of(v) for v in group) if p) for group in listed]
        for language, listed in (entry.get("all_of") or {}).items()
    }
    sizes = {len(groups) for groups in by_language.values()}
    if len(sizes) > 1:
        raise InputError("all_of needs the same number of groups in each language", where=where)
    count = sizes.pop() if sizes else 0
    return tuple(
        tuple(p for groups in by_language.values() for p in groups[k]) for k in range(count)
    )


def _flag(entry: Mapping[str, Any], n: int) -> Flag:
    where = f"red flag #{n + 1} ({entry.get('id', '?')})"
    if not isinstance(entry.get("id"), str) or not isinstance(entry.get("label"), str):
        raise InputError("each [[flag]] needs an id and a label", where=where)
    phrases = tuple(
        p for language in LANGUAGES for p in (words_of(v) for v in entry.get(language, [])) if p
    )
    groups = _groups(entry, where)
    if not phrases and not groups:
        raise InputError("a flag needs phrases (en/es) or all_of groups", where=where)
    return Flag(entry["id"], entry["label"], phrases, groups)


def parse_lexicon(text: str, *, source: str) -> Lexicon:
    """The lexicon in `text` (TOML); InputError names the flag or modifier that is wrong."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"the red-flag file is not valid TOML: {error}", where=source) from None
    modifiers = table.get("modifiers", {})
    where = f"{source} [modifiers]"
    mods = Modifiers(
        *(
            _phrases(modifiers, key, where)
            for key in ("negation_before", "negation_after", "history", "general", "hedging")
        )
    )
    flags = tuple(_flag(entry, n) for n, entry in enumerate(table.get("flag", [])))
    if not flags:
        raise InputError("the red-flag file lists no [[flag]]", where=source)
    flag_phrases = [p for f in flags for p in (*f.phrases, *(q for g in f.all_of for q in g))]
    phrases = flag_phrases + [
        p
        for group in (
            mods.negation_before,
            mods.negation_after,
            mods.history,
            mods.general,
            mods.hedging,
        )
        for p in group
    ]
    not_slips = modifiers.get("not_slips", [])
    if not isinstance(not_slips, list) or not all(isinstance(w, str) for w in not_slips):
        raise InputError("not_slips must be a list of words", where=where)
    matcher = WordMatcher((w for p in phrases for w in p), (fold(w) for w in not_slips))
    index: dict[str, set[Phrase]] = {}
    for phrase in flag_phrases:
        index.setdefault(phrase[0], set()).add(phrase)
    return Lexicon(
        flags, mods, source, matcher, {word: frozenset(ps) for word, ps in index.items()}
    )


def lexicon_text(path: str | None = None) -> str:
    """The TOML of the practice's lexicon at `path`, or of the shipped one."""
    if path:
        return Path(path).read_text(encoding="utf-8")
    shipped = resources.files("clinicflow.automations.triage") / "data" / "red_flags.toml"
    return shipped.read_text(encoding="utf-8")


@lru_cache(maxsize=4)
def load_lexicon(path: str | None = None) -> Lexicon:
    """The practice's lexicon at `path`, or the one shipped with clinicflow."""
    return parse_lexicon(lexicon_text(path), source=path or "red_flags.toml")


def scan(lexicon: Lexicon, text: str) -> Scan:
    """`text` read for matching against `lexicon`."""
    message = folded(text)
    means = tuple(lexicon.matcher(w) for w in message.words)
    return Scan(message.words, message.clauses, means, _union(means), frozenset(message.words))


def find(message: Scan, phrase: Phrase, *, exact: bool = False) -> list[tuple[int, int]]:
    """Each (first, last) word position where `phrase` occurs in one clause of `message`;
    `exact`: word for word, no slips (modifiers: "se quita" must not read as "se quito")."""
    if not (message.spelt if exact else message.present).issuperset(phrase):
        return []
    means = tuple(frozenset((w,)) for w in message.words) if exact else message.means
    clauses, found = message.clauses, []
    first, rest = phrase[0], phrase[1:]
    for start, meaning in enumerate(means):
        if first not in meaning:
            continue
        at, ok = start, True
        for wanted in rest:
            limit = min(len(means), at + 2 + MAX_GAP)
            nxt = next(
                (
                    i
                    for i in range(at + 1, limit)
                    if clauses[i] == clauses[start] and wanted in means[i]
                ),
                None,
            )
            if nxt is None:
                ok = False
                break
            at = nxt
        if ok:
            found.append((start, at))
    return found


def _clause(message: Scan, clause: int) -> Scan:
    positions = [i for i, c in enumerate(message.clauses) if c == clause]
    return message.part(positions[0], positions[-1] + 1)


def _negated(message: Scan, first: int, last: int, mods: Modifiers) -> bool:
    clause = message.clauses[first]
    start = first
    while start > 0 and first - start < NEGATION_REACH and message.clauses[start - 1] == clause:
        start -= 1
    if any(find(message.part(start, first), p, exact=True) for p in mods.negation_before):
        return True
    end = last + 1
    while end < len(message.words) and message.clauses[end] == clause:
        end += 1
    return any(find(message.part(last + 1, end), p, exact=True) for p in mods.negation_after)


def _judge(message: Scan, span: tuple[int, int], mods: Modifiers) -> str | None:
    if _negated(message, *span, mods):
        return "negated"
    clause = _clause(message, message.clauses[span[0]])
    if any(find(clause, p, exact=True) for p in mods.history):
        return "history"
    if any(find(clause, p, exact=True) for p in mods.general):
        return "general question"
    return None


def _hit(
    flag: Flag,
    phrase: Phrase,
    spans: Sequence[tuple[int, int]],
    message: Scan,
    mods: Modifiers,
    hedged: bool,
) -> Hit:
    """The best of `phrase`'s matches (`spans`): one that counts wins over one ruled out."""
    verdicts = [_judge(message, span, mods) for span in spans]
    ruled_out = None if None in verdicts else verdicts[0]
    return Hit(flag.id, flag.label, " ".join(phrase), ruled_out, hedged and ruled_out is None)


def red_flags(lexicon: Lexicon, text: str) -> list[Hit]:
    """Every flag found in `text`, each once, with whether it counts and why not."""
    message = scan(lexicon, text)
    mods = lexicon.modifiers
    hedged = any(find(message, p, exact=True) for p in mods.hedging)
    # Only the phrases that start with a word the message stands for can match.
    starting = {p for word in message.present for p in lexicon.index.get(word, ())}
    spans = {p: found for p in starting if (found := find(message, p))}
    hits: list[Hit] = []
    for flag in lexicon.flags:
        candidates = [
            _hit(flag, p, spans[p], message, mods, hedged) for p in flag.phrases if p in spans
        ]
        if flag.all_of:
            groups = [[p for p in group if p in spans] for group in flag.all_of]
            if all(groups):
                parts = [
                    _hit(flag, group[0], spans[group[0]], message, mods, hedged) for group in groups
                ]
                ruled = next((h.ruled_out for h in parts if h.ruled_out), None)
                phrase = " + ".join(h.phrase for h in parts)
                candidates.append(Hit(flag.id, flag.label, phrase, ruled, hedged and not ruled))
        if candidates:
            counting = [h for h in candidates if h.counts]
            hits.append(counting[0] if counting else candidates[0])
    return hits


def urgent_hits(hits: Sequence[Hit]) -> list[Hit]:
    """The hits that make a message urgent."""
    return [h for h in hits if h.counts]
