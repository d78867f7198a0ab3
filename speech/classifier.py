"""Which desk a caller's words are about, and what kind of appeal it is.

TF-IDF n-grams with linear support vector machines (scikit-learn), one model per language,
trained at load from the examples and keywords in `config/examples/`. Chinese on characters
rather than words, because it has no spaces and the recognizer's word cuts vary; a keyword
is one more short example. Desk scores are made probabilities by temperature scaling
(`_temperature`), so that the dialogue's thresholds (speech.yaml) keep their meaning after
every retraining; bench/classify.py measures how precise each threshold is.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from speech.examples import DeskExamples

_HAN = re.compile(r"[\u4e00-\u9fff]")
_BETWEEN_HAN = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
_SPACES = re.compile(r"\s+")
_NOISE = re.compile(r"[^\w\s']")


def normalise(text: str) -> str:
    """Lower case, punctuation gone, and no spaces inside Chinese (recognizers add them)."""
    text = _NOISE.sub(" ", text.lower())
    text = _BETWEEN_HAN.sub("", text)
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True)
class Classification:
    candidates: tuple[tuple[str, float], ...]  # best first, scores in 0..1
    appeal: str
    appeal_score: float
    seconds: float = field(default=0.0, compare=False)

    @property
    def top(self) -> tuple[str, float] | None:
        return self.candidates[0] if self.candidates else None


class _LanguageModel:
    """The desk and appeal models of one language."""

    def __init__(
        self, vectorizer: Any, desks: LinearSVC, temperature: float, appeals: LinearSVC
    ) -> None:
        self.vectorizer = vectorizer
        self.desks = desks
        self.temperature = temperature
        self.appeals = appeals

    def desk_scores(self, features: Any) -> Any:
        return _softmax(self.desks.decision_function(features)[0] * self.temperature)


def _features(lang: str) -> Any:
    """Chinese: characters and pairs of them (words are two characters, mostly). Other
    languages: five-character pieces of words (roots and endings, whatever the inflection
    or the spelling) and words and word pairs, stemmed. Measured on the English examples
    (5-fold cross-validation): a little more accurate than pieces of two to four characters,
    with a third of the non-zero features, so training takes half the time."""
    if lang == "zh":
        return TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    return FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(5, 5), sublinear_tf=True)),
            ("words", TfidfVectorizer(analyzer=_words, sublinear_tf=True)),
        ]
    )


_WORD = re.compile(r"[a-z][a-z']+")
# British and American spellings are one word to the word features.
_SPELLING = {
    "licence": "license",
    "labour": "labor",
    "centre": "center",
    "metre": "meter",
    "tonne": "ton",
    "programme": "program",
    "neighbour": "neighbor",
    "odour": "odor",
    "colour": "color",
}


def _stem(word: str) -> str:
    """Plural and possessive endings off, so that `permits` and `permit` are one word."""
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return _SPELLING.get(word, word)


def _words(text: str) -> list[str]:
    """Words and word pairs of a normalised text, stemmed."""
    words = [_stem(word) for word in _WORD.findall(text)]
    return words + [f"{a} {b}" for a, b in pairwise(words)]


def _softmax(scores: Any) -> Any:
    shifted = np.exp(scores - np.max(scores))
    return shifted / shifted.sum()


def _temperature(features: Any, labels: list[str], c: float) -> float:
    """Scale SVM scores so that their softmax is a calibrated probability.

    Temperature scaling: fit on held-out examples, by the likelihood of the true desk.
    It keeps the SVM's ranking, so the scores mean the same after every retraining while
    top-1 and top-3 stay those of the SVM itself.
    """
    y = np.array(labels)
    # One split (every third example held out) keeps the training under two seconds.
    held = np.arange(len(y)) % 3 == 0
    model = LinearSVC(C=c).fit(features[~held], y[~held])
    known = np.isin(y[held], model.classes_)
    decision = model.decision_function(features[held])[known]
    index = {label: i for i, label in enumerate(model.classes_)}
    true = np.array([index[label] for label in y[held][known]])

    def loss(t: float) -> float:
        z = decision * t
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -float(log_p[np.arange(len(true)), true].sum())

    return float(minimize_scalar(loss, bounds=(0.1, 50.0), method="bounded").x)


class SpecialtyClassifier:
    """One model per language: mixing them let the English desks' words blur the Chinese
    ones and the other way round (bench/classify.py measured both)."""

    def __init__(self, models: Mapping[str, _LanguageModel], train_s: float) -> None:
        self._models = models
        self.train_s = train_s

    @classmethod
    def train(cls, data: Mapping[str, DeskExamples]) -> SpecialtyClassifier:
        started = time.perf_counter()
        langs = sorted(
            {lang for desk in data.values() for lang in (*desk.keywords, *desk.examples)}
        )
        models = {}
        for lang in langs:
            texts: list[str] = []
            desks: list[str] = []
            appeal_texts: list[str] = []
            appeals: list[str] = []
            appeal_rows: list[int] = []  # where the examples are among `texts`
            for desk, examples in data.items():
                for keyword in examples.keywords.get(lang, ()):
                    texts.append(normalise(keyword))
                    desks.append(desk)
                for appeal, utterances in examples.examples.get(lang, {}).items():
                    for utterance in utterances:
                        appeal_rows.append(len(texts))
                        texts.append(normalise(utterance))
                        desks.append(desk)
                        appeal_texts.append(normalise(utterance))
                        appeals.append(appeal)
            if len(set(desks)) < 2 or len(set(appeals)) < 2:
                continue  # too little of this language to learn from
            vectorizer = _features(lang)
            if lang == "zh":
                # Weighted as the Chinese thresholds were set: every example counted twice.
                features = vectorizer.fit_transform(texts + appeal_texts)
                desk_features = features[: len(texts)]
                appeal_features = features[len(texts) :]
            else:
                # Every example read once (the slow part), its row shared by both models.
                desk_features = vectorizer.fit_transform(texts)
                appeal_features = desk_features[appeal_rows]
            temperature = _temperature(desk_features, desks, 1.0)
            desk_model = LinearSVC(C=1.0).fit(desk_features, desks)
            # English appeals: C=1 was as good as the former features (cross-validated).
            appeal_c = 0.5 if lang == "zh" else 1.0
            appeal_model = LinearSVC(C=appeal_c).fit(appeal_features, appeals)
            models[lang] = _LanguageModel(vectorizer, desk_model, temperature, appeal_model)
        if not models:
            raise ValueError("the classifier needs examples of at least two desks and appeals")
        return cls(models, time.perf_counter() - started)

    def classify(self, text: str, lang: str | None = None, top: int = 3) -> Classification:
        """`lang`: the call's language; None: Chinese if the text has Chinese characters."""
        started = time.perf_counter()
        clean = normalise(text)
        if lang is None or lang not in self._models:
            lang = "zh" if _HAN.search(clean) else "en"
        model = self._models.get(lang) or next(iter(self._models.values()))
        if not clean:
            return Classification((), "unknown", 0.0, time.perf_counter() - started)
        features = model.vectorizer.transform([clean])
        if features.nnz == 0:
            return Classification((), "unknown", 0.0, time.perf_counter() - started)
        desk_p = model.desk_scores(features)
        order = np.argsort(desk_p)[::-1][:top]
        candidates = tuple((str(model.desks.classes_[i]), float(desk_p[i])) for i in order)
        appeal_p = _softmax(model.appeals.decision_function(features)[0])
        best = int(np.argmax(appeal_p))
        return Classification(
            candidates,
            str(model.appeals.classes_[best]),
            float(appeal_p[best]),
            time.perf_counter() - started,
        )
