"""The learned layer: a pool classifier trained from the labelled set clinicflow ships.

TF-IDF over words (1-2) and characters (2-5, within words: typing slips and Spanish endings)
into a class-balanced linear SVM (one against the rest per pool), from scikit-learn. Its scores
are margins: above 0 the model puts the message in that pool. Measured on the training set by
cross-validation, it routed as well as logistic regression at a tenth of the training time
(docs/benchmarks.md). Nothing binary ships: the model is trained from `data/train*.jsonl` on
first use and kept in the data directory, keyed by what it was trained from, so a practice
that edits the set or the lexicon gets a model of its own.

The urgent threshold is chosen on the training set only, by cross-validation: the lowest urgent
margin (capped at 0, so a message the model itself calls urgent always is) at which the
cross-validated model, together with the red-flag lexicon, raises an alarm on no more than
FALSE_ALARM_BUDGET of the training set's non-urgent messages. Lowering the threshold only ever
finds more emergencies; what stops it is the nurse's attention, since each false alarm
interrupts her and alarm fatigue slows the answer to the real ones (and each is a message in
the wrong pool). The budget is spent by the lexicon's false alarms first.

The recall of the union on the training set is not used to choose: the lexicon was written
from the training set's misses, so on those messages it finds nearly every emergency, and a
threshold chosen on that recall would leave the model nothing to do (it chose 0 once the
lexicon was widened). On an author the lexicon had not seen it found 70-72% of the urgent
messages (docs/benchmarks.md), and the model has to find the rest.

The folds leave one author's file out at a time: every author phrases emergencies in ways the
others do not, so a model scored on messages by authors it was trained on looks surer than it
is on a new patient's words (with random folds, one author's near-paraphrases sit on both
sides of a fold). With fewer than three files (a practice's own set) the folds are stratified
at random. The held-out sets are never read here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinicflow.automations.triage.pools import POOLS, URGENT
from clinicflow.automations.triage.text import fold
from clinicflow.errors import InputError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# Share of non-urgent messages that may raise an alarm (cross-validated on the training set).
FALSE_ALARM_BUDGET = 0.05
# How a model is made (features, classifier, how the threshold is chosen): part of the cache
# key, so a model trained by an older recipe is trained again rather than loaded.
RECIPE = "tfidf-svm/leave-one-author-out/false-alarm-budget"
THRESHOLD_CAP = 0.0
SEED = 20261202
TRAIN_SETS = (
    "train",
    "train_extra_a",
    "train_extra_b",
    "train_extra_c",
    "train_extra_d",
    "train_extra_e",
    "train_extra_f",
    "train_extra_g",
)
# The held-out files, each by an author no training file shares, never read in training:
# `clinicflow triage evaluate` scores them together and one by one.
HELDOUT_SETS = ("heldout", "heldout_b", "heldout_c", "heldout_d")
# Folds by author need at least this many authors; fewer: stratified random folds.
MIN_AUTHORS_FOR_GROUPED_FOLDS = 3


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled message."""

    id: str
    language: str
    pool: str
    text: str
    source: str = ""  # the file it came from: one author per shipped file


def parse_examples(lines: Sequence[str], *, source: str) -> list[Example]:
    """Examples from JSON lines; InputError names the line that is wrong."""
    found = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"not JSON: {error.msg}", where=where) from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InputError("each line needs a text", where=where)
        pool = row.get("pool")
        if pool not in POOLS:
            raise InputError(f"pool {pool!r} is not one of {', '.join(POOLS)}", where=where)
        found.append(
            Example(
                str(row.get("id", number)),
                str(row.get("language", "en")),
                pool,
                row["text"],
                source,
            )
        )
    return found


def shipped_set(name: str) -> list[Example]:
    """A labelled set shipped in `automations/triage/data` (`heldout`, `train`, ...)."""
    path = resources.files("clinicflow.automations.triage") / "data" / f"{name}.jsonl"
    return parse_examples(path.read_text(encoding="utf-8").splitlines(), source=f"{name}.jsonl")


def training_set() -> list[Example]:
    """Every shipped training file that is present, in order (never the held-out one)."""
    folder = resources.files("clinicflow.automations.triage") / "data"
    return [
        e for name in TRAIN_SETS if (folder / f"{name}.jsonl").is_file() for e in shipped_set(name)
    ]


def heldout_set() -> list[Example]:
    """Every shipped held-out file, in order (each example knows its file)."""
    return [e for name in HELDOUT_SETS for e in shipped_set(name)]


def read_examples(path: Path) -> list[Example]:
    """A labelled set from a JSON-lines file of the practice's own."""
    return parse_examples(path.read_text(encoding="utf-8").splitlines(), source=str(path))


def _pipeline() -> Pipeline:
    # scikit-learn is imported here, not at the top: every CLI command and the web app load
    # this module through the automation registry, and most never classify a message.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.svm import LinearSVC

    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(preprocessor=fold, ngram_range=(1, 2), min_df=1, sublinear_tf=True),
            ),
            (
                "chars",
                TfidfVectorizer(
                    preprocessor=fold,
                    analyzer="char_wb",
                    ngram_range=(2, 5),
                    min_df=2,
                    sublinear_tf=True,
                ),
            ),
        ]
    )
    classifier = LinearSVC(C=1.0, class_weight="balanced")
    return Pipeline([("features", features), ("classifier", classifier)])


@dataclass(frozen=True, slots=True)
class PoolModel:
    """A trained classifier, its pools in column order and its urgent threshold."""

    pipeline: Pipeline
    pools: tuple[str, ...]
    urgent_threshold: float
    version: str

    def scores(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Per text, each pool's margin (above 0: the model puts it there)."""
        if not texts:
            return []
        matrix = _per_pool(self.pipeline.decision_function(list(texts)))
        return [dict(zip(self.pools, map(float, row), strict=True)) for row in matrix]


def _per_pool(margins: Any) -> Any:
    """Margins as one column per pool: with two pools scikit-learn gives one column only (the
    second pool's margin; the first's is its negative)."""
    import numpy as np

    return np.column_stack([-margins, margins]) if margins.ndim == 1 else margins


def _threshold(examples: Sequence[Example], urgent_by_lexicon: Callable[[str], bool]) -> float:
    import numpy as np
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedKFold, cross_val_predict

    labels = np.array([e.pool for e in examples])
    texts = [e.text for e in examples]
    authors = [e.source for e in examples]
    folds: Any
    if len(set(authors)) >= MIN_AUTHORS_FOR_GROUPED_FOLDS:
        folds = list(LeaveOneGroupOut().split(texts, labels, groups=authors))
    else:
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    margins = _per_pool(
        cross_val_predict(_pipeline(), texts, labels, cv=folds, method="decision_function")
    )
    column = sorted(set(labels)).index(URGENT)
    calm = [
        (float(margins[n][column]), urgent_by_lexicon(e.text))
        for n, e in enumerate(examples)
        if e.pool != URGENT
    ]
    return threshold_within_budget(calm, FALSE_ALARM_BUDGET)


def threshold_within_budget(calm: Sequence[tuple[float, bool]], budget: float) -> float:
    """The lowest urgent threshold (at most THRESHOLD_CAP) at which no more than `budget` of
    the non-urgent messages raise an alarm, given each one's cross-validated urgent margin and
    whether the lexicon flags it (those alarms are spent first). A message alarms at a margin
    at or above the threshold, so the threshold sits strictly above the first margin the budget
    leaves out, and above every margin tied with it."""
    alarms_left = int(len(calm) * budget) - sum(flagged for _, flagged in calm)
    unflagged = sorted((m for m, flagged in calm if not flagged), reverse=True)
    if not unflagged:
        return THRESHOLD_CAP
    if alarms_left >= len(unflagged):
        return min(THRESHOLD_CAP, unflagged[-1])
    room = max(alarms_left, 0)  # model alarms the budget still allows
    left_out = unflagged[room]
    above = [m for m in unflagged[:room] if m > left_out]
    if not above:  # no room, or every margin let through ties with the first left out
        return min(THRESHOLD_CAP, math.nextafter(left_out, math.inf))
    # Between the first margin left out and the lowest one above it.
    return min(THRESHOLD_CAP, (left_out + min(above)) / 2)


def train(examples: Sequence[Example], *, urgent_by_lexicon: Callable[[str], bool]) -> PoolModel:
    """Fit on `examples` and choose the urgent threshold by cross-validation on them."""
    pools = {e.pool for e in examples}
    if len(pools) < 2 or URGENT not in pools:
        raise InputError("the labelled set needs urgent messages and at least one other pool")
    pipeline = _pipeline().fit([e.text for e in examples], [e.pool for e in examples])
    return PoolModel(
        pipeline,
        tuple(str(c) for c in pipeline.classes_),
        _threshold(examples, urgent_by_lexicon),
        f"tfidf-svm-{set_digest(examples)}",
    )


def set_digest(examples: Sequence[Example], *extra: str) -> str:
    """What a model was trained from, in 12 hex digits."""
    text = "\n".join([*(f"{e.pool}\t{e.text}" for e in examples), *extra])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# Models by what they were trained from, for the life of the process (tests and the worker
# build several runtimes; each would otherwise train or load the same model again).
_TRAINED: dict[str, PoolModel] = {}


def cached_model(
    examples: Sequence[Example],
    *,
    lexicon_text: str,
    urgent_by_lexicon: Callable[[str], bool],
    cache_dir: Path | None,
) -> PoolModel:
    """The model for `examples`, from `cache_dir` when one was trained from the same set,
    lexicon and scikit-learn; else trained now and saved there (written whole, then renamed)."""
    import joblib
    import sklearn

    # Everything the model and its threshold depend on: the folds follow each line's file.
    key = set_digest(
        examples,
        lexicon_text,
        sklearn.__version__,
        RECIPE,
        f"budget={FALSE_ALARM_BUDGET} cap={THRESHOLD_CAP} authors>={MIN_AUTHORS_FOR_GROUPED_FOLDS}",
        "\n".join(e.source for e in examples),
    )
    if key in _TRAINED:
        return _TRAINED[key]
    path = cache_dir / f"triage-{key}.joblib" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            loaded = joblib.load(path)
            if isinstance(loaded, PoolModel):
                _TRAINED[key] = loaded
                return loaded
        except (OSError, ValueError, EOFError, AttributeError, ImportError):
            pass  # a damaged or foreign file: train again below
    model = train(examples, urgent_by_lexicon=urgent_by_lexicon)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        joblib.dump(model, partial)
        partial.replace(path)
    _TRAINED[key] = model
    return model
