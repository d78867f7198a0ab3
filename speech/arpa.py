"""A small bigram language model in ARPA format, made from the classifier's own phrases.

pocketsphinx decodes a word-loop grammar of a few thousand words far too slowly, while an
n-gram model over the same words is cheap; restricting it to the desks' phrases is what
makes its CMU model useful on telephone speech at all.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable

_WORD = re.compile(r"[a-z][a-z']*")
START, END = "<s>", "</s>"


def bigram_arpa(texts: Iterable[str], known: Callable[[str], bool]) -> str:
    """Witten-Bell smoothed bigrams with backoff to add-one unigrams."""
    sentences = [
        [START, *(w for w in _WORD.findall(text.lower()) if known(w)), END] for text in texts
    ]
    sentences = [s for s in sentences if len(s) > 2]
    unigrams = Counter(w for s in sentences for w in s)
    bigrams = Counter((a, b) for s in sentences for a, b in itertools.pairwise(s))
    followers = Counter(a for a, _ in bigrams)
    vocabulary = sorted(unigrams)
    total = sum(unigrams.values()) + len(vocabulary)
    uni_logp = {w: math.log10((unigrams[w] + 1) / total) for w in vocabulary}
    lines = ["\\data\\", f"ngram 1={len(vocabulary)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    for word in vocabulary:
        count = unigrams[word]
        types = followers[word]
        # Witten-Bell: the mass left for unseen followers is types / (count + types).
        backoff = math.log10(types / (count + types)) if types else 0.0
        logp = -99.0 if word == START else uni_logp[word]
        lines.append(f"{logp:.4f} {word} {backoff:.4f}")
    lines += ["", "\\2-grams:"]
    for (a, b), count in sorted(bigrams.items()):
        logp = math.log10(count / (unigrams[a] + followers[a]))
        lines.append(f"{logp:.4f} {a} {b}")
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)
