"""How well the classifier picks the desk and the appeal type from text.

    .venv/bin/python bench/classify.py [--config config] [--eval tests/data/eval]

Trains on config/examples/ exactly as the server does, then classifies the held-out
evaluation set (tests/data/eval/, never used for training) and prints, per language, top-1
and top-3 desk accuracy, appeal-type accuracy, the most confused pairs, what each
confirmation threshold would do, and the time per classification. Targets: top-1 >= 90%,
top-3 >= 97% on text.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hotline.config import load_config  # noqa: E402
from speech.classifier import Classification, SpecialtyClassifier  # noqa: E402

TOP1_TARGET, TOP3_TARGET = 0.90, 0.97


@dataclass(frozen=True)
class Item:
    lang: str
    desk: str
    appeal: str
    text: str


def evaluation_set(directory: Path) -> list[Item]:
    items = []
    for path in sorted(directory.glob("*.yaml")):
        for desk, by_lang in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            for lang, entries in by_lang.items():
                items.extend(Item(lang, desk, e["appeal"], e["text"]) for e in entries)
    return items


def report(lang: str, items: list[Item], results: list[Classification]) -> dict[str, float]:
    n = len(items)
    top1 = sum(r.candidates[0][0] == i.desk for i, r in zip(items, results, strict=True)) / n
    top3 = (
        sum(i.desk in [d for d, _ in r.candidates[:3]] for i, r in zip(items, results, strict=True))
        / n
    )
    appeal = sum(r.appeal == i.appeal for i, r in zip(items, results, strict=True)) / n
    print(f"\n[{lang}] {n} utterances")
    print(f"  top-1 desk   {top1:6.1%}   (target {TOP1_TARGET:.0%})")
    print(f"  top-3 desk   {top3:6.1%}   (target {TOP3_TARGET:.0%})")
    print(f"  appeal type  {appeal:6.1%}")
    confused = Counter(
        (i.desk, r.candidates[0][0])
        for i, r in zip(items, results, strict=True)
        if r.candidates[0][0] != i.desk
    )
    print("  most confused (said -> taken for):")
    for (said, taken), count in confused.most_common(6):
        print(f"    {count} x {said} -> {taken}")
    print("  confirmation threshold: share of callers it applies to, and how often it is right")
    for threshold in (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        chosen = [
            (i, r) for i, r in zip(items, results, strict=True) if r.candidates[0][1] >= threshold
        ]
        right = sum(r.candidates[0][0] == i.desk for i, r in chosen)
        precision = right / len(chosen) if chosen else 0.0
        print(f"    >= {threshold:.1f}: {len(chosen) / n:6.1%} of callers, {precision:6.1%} right")
    return {"top1": top1, "top3": top3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config")
    parser.add_argument("--eval", type=Path, default=ROOT / "tests" / "data" / "eval")
    args = parser.parse_args()
    config = load_config(args.config)
    trainings = [SpecialtyClassifier.train(config.examples) for _ in range(3)]
    classifier = trainings[-1]
    examples = sum(d.count(lang) for d in config.examples.values() for lang in ("zh", "en"))
    print(
        f"trained on {examples} examples of {len(config.examples)} desks in "
        f"{statistics.median(t.train_s for t in trainings):.2f} s (median of 3)"
    )
    items = evaluation_set(args.eval)
    timings: list[float] = []
    summary = {}
    for lang in ("zh", "en"):
        subset = [i for i in items if i.lang == lang]
        results = []
        for item in subset:
            started = time.perf_counter()
            results.append(classifier.classify(item.text, lang))
            timings.append(time.perf_counter() - started)
        summary[lang] = report(lang, subset, results)
    print(
        f"\ntime per classification: median {statistics.median(timings) * 1000:.2f} ms, "
        f"max {max(timings) * 1000:.2f} ms"
    )
    print("\nsummary:")
    for lang, figures in summary.items():
        verdict = (
            "PASS"
            if figures["top1"] >= TOP1_TARGET and figures["top3"] >= TOP3_TARGET
            else "below target"
        )
        print(f"  {lang}: top-1 {figures['top1']:.1%}, top-3 {figures['top3']:.1%}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
