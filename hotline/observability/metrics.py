"""What Prometheus scrapes: one registry per app, so two apps in one process (tests, a
benchmark) never count into each other's figures.

Every label value comes from the code or the config (routes, desks, outcomes), never from
a request as it arrived, so the number of series stays bounded whatever callers send.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

EXPOSITION_CONTENT_TYPE = CONTENT_TYPE_LATEST
S = TypeVar("S")  # a metric's series (a labelled child)
_LABEL_WORD = re.compile(r"^[a-z0-9][a-z0-9._:-]{0,63}$")


def bounded(value: str, other: str = "other") -> str:
    """A label value as it is, when it looks like one of ours; `other` when it does not."""
    return value if _LABEL_WORD.match(value) else other


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Histogram(
            "hotline_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status.",
            ["route", "method", "status"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.call_outcomes = Counter(
            "hotline_call_outcomes",
            "Call webhooks by route and the outcome logged for them (gather:menu, "
            "enqueue:<queue>, record:voicemail, call-ended...).",
            ["route", "outcome"],
            registry=registry,
        )
        self.queue_joins = Counter(
            "hotline_queue_joins",
            "Callers who joined a desk's queue (an overflow counts at the desk it went to).",
            ["specialty"],
            registry=registry,
        )
        self.queue_abandons = Counter(
            "hotline_queue_abandons",
            "Callers who hung up while waiting in a desk's queue.",
            ["specialty"],
            registry=registry,
        )
        self.speech_seconds = Histogram(
            "hotline_speech_seconds",
            "From the end of a recording to the understanding (fetch, recognise, classify).",
            ["lang", "result"],
            buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0),
            registry=registry,
        )
        self.speech_rtf = Histogram(
            "hotline_speech_real_time_factor",
            "Decoding time divided by the recording's length.",
            ["lang"],
            buckets=(0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0),
            registry=registry,
        )
        self.speech_problems = Counter(
            "hotline_speech_problems",
            "Recordings that could not be understood, by problem.",
            ["problem"],
            registry=registry,
        )
        self.classifications = Counter(
            "hotline_classification_outcomes",
            "What the flow did with a caller's words: confirm (one desk announced), choose "
            "(two desks offered), say-again or key-menu (not understood).",
            ["outcome"],
            registry=registry,
        )
        self.classification_answers = Counter(
            "hotline_classification_answers",
            "What callers made of the desks their words pointed to: accepted, chosen, "
            "rejected, menu.",
            ["answer"],
            registry=registry,
        )
        self._hot: dict[tuple[str, ...], object] = {}
        self._spool_source: Callable[[], float] = lambda: 0.0
        self._spool_last = 0.0
        self.spool_depth = Gauge(
            "hotline_spool_depth",
            "Ticket changes waiting in the local spool for the database.",
            registry=registry,
        )
        self.spool_depth.set_function(self._spool_depth)
        self.callback_jobs = Gauge(
            "hotline_callback_jobs",
            "Callback and survey jobs by kind and state, read from the database at scrape time.",
            ["kind", "state"],
            registry=registry,
        )
        self.callback_jobs_fresh = Gauge(
            "hotline_callback_jobs_fresh",
            "1 when hotline_callback_jobs was read at the last scrape; 0 when the database "
            "did not answer and the values are the last ones read.",
            registry=registry,
        )

    # -- set by the edge and the services --------------------------------------------------

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        key = ("request", route, method, str(status))
        self._series(key, lambda: self.requests.labels(*key[1:])).observe(seconds)

    def call_outcome(self, route: str, outcome: str) -> None:
        key = ("outcome", route, outcome)
        self._series(key, lambda: self.call_outcomes.labels(route, bounded(outcome))).inc()

    def _series(self, key: tuple[str, ...], child: Callable[[], S]) -> S:
        """The series every webhook touches, found once: `labels()` takes a lock and checks
        its values each time. The keys are bounded as the label values are."""
        found = self._hot.get(key)
        if found is None:
            found = self._hot[key] = child()
        return cast(S, found)

    def queue_joined(self, specialty: str) -> None:
        self.queue_joins.labels(specialty).inc()

    def queue_abandoned(self, specialty: str) -> None:
        self.queue_abandons.labels(specialty).inc()

    def understood(self, lang: str, seconds: float, rtf: float | None) -> None:
        self.speech_seconds.labels(bounded(lang), "understood").observe(seconds)
        if rtf is not None:
            self.speech_rtf.labels(bounded(lang)).observe(rtf)

    def not_understood(self, lang: str, seconds: float, problem: str) -> None:
        self.speech_seconds.labels(bounded(lang), "not-understood").observe(seconds)
        self.speech_problems.labels(bounded(problem)).inc()

    def classified(self, outcome: str) -> None:
        self.classifications.labels(outcome).inc()

    def classification_answer(self, answer: str) -> None:
        self.classification_answers.labels(answer).inc()

    def set_spool_depth_source(self, source: Callable[[], float]) -> None:
        """Where the spool depth is read at each scrape (the spool sets it when it starts)."""
        self._spool_source = source

    def set_callback_jobs(self, counts: Mapping[tuple[str, str], int]) -> None:
        for (kind, state), count in counts.items():
            self.callback_jobs.labels(kind, state).set(count)
        self.callback_jobs_fresh.set(1)

    def callback_jobs_stale(self) -> None:
        self.callback_jobs_fresh.set(0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def _spool_depth(self) -> float:
        # A scrape must not fail because the spool could not say: its last figure stands.
        with contextlib.suppress(Exception):
            self._spool_last = float(self._spool_source())
        return self._spool_last
