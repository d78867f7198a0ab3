"""Which desk a caller's words are about, and what kind of appeal it is.

Character n-gram TF-IDF with linear support vector machines (scikit-learn), trained at load
from the examples and keywords in `config/examples/`. Characters rather than words because
Chinese has no spaces and the recognizer's word cuts vary; a keyword is one more short
example. The SVM scores are calibrated (sigmoid, 3-fold) into probabilities, because the
dialogue's thresholds (speech.yaml) must mean the same thing after every retraining;
bench/classify.py measures how precise each threshold is.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from speech.examples import DeskExamples

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


class SpecialtyClassifier:
    def __init__(
        self,
        vectorizer: TfidfVectorizer,
        desks: CalibratedClassifierCV,
        appeals: CalibratedClassifierCV,
        train_s: float,
    ) -> None:
        self._vectorizer = vectorizer
        self._desks = desks
        self._appeals = appeals
        self.train_s = train_s

    @classmethod
    def train(cls, data: Mapping[str, DeskExamples]) -> SpecialtyClassifier:
        started = time.perf_counter()
        texts: list[str] = []
        desks: list[str] = []
        appeal_texts: list[str] = []
        appeals: list[str] = []
        for desk, examples in data.items():
            for keywords in examples.keywords.values():
                texts.extend(normalise(k) for k in keywords)
                desks.extend(desk for _ in keywords)
            for by_appeal in examples.examples.values():
                for appeal, utterances in by_appeal.items():
                    for utterance in utterances:
                        texts.append(normalise(utterance))
                        desks.append(desk)
                        appeal_texts.append(normalise(utterance))
                        appeals.append(appeal)
        if len(set(desks)) < 2 or len(set(appeals)) < 2:
            raise ValueError("the classifier needs examples of at least two desks and appeals")
        vectorizer = TfidfVectorizer(
            analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1
        )
        features = vectorizer.fit_transform(texts + appeal_texts)
        desk_model = CalibratedClassifierCV(LinearSVC(C=1.0), cv=3, method="sigmoid")
        desk_model.fit(features[: len(texts)], desks)
        appeal_model = CalibratedClassifierCV(LinearSVC(C=0.5), cv=3, method="sigmoid")
        appeal_model.fit(features[len(texts) :], appeals)
        return cls(vectorizer, desk_model, appeal_model, time.perf_counter() - started)

    def classify(self, text: str, top: int = 3) -> Classification:
        started = time.perf_counter()
        clean = normalise(text)
        if not clean:
            return Classification((), "unknown", 0.0, time.perf_counter() - started)
        features = self._vectorizer.transform([clean])
        if features.nnz == 0:
            return Classification((), "unknown", 0.0, time.perf_counter() - started)
        desk_p = self._desks.predict_proba(features)[0]
        order = np.argsort(desk_p)[::-1][:top]
        candidates = tuple((str(self._desks.classes_[i]), float(desk_p[i])) for i in order)
        appeal_p = self._appeals.predict_proba(features)[0]
        best = int(np.argmax(appeal_p))
        return Classification(
            candidates,
            str(self._appeals.classes_[best]),
            float(appeal_p[best]),
            time.perf_counter() - started,
        )
