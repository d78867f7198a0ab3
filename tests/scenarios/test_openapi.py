"""The ops API against its OpenAPI document (hotline/web/api/openapi.yaml), with schemathesis.

The app runs on loopback in a thread of its own (`running_line`, SQLite), with a few real
calls behind it so that tickets exist; schemathesis fetches the document the app serves and
sends generated requests with the centre's token, checking that nothing answers 5xx, that
every status code, content type and body is the one documented, and that invalid input is
refused with a 4xx. Bounded: a few examples per operation, so the run takes seconds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from hotline.carrier.callers import QueueChoice, QueuePlan, ScriptedCaller
from tests.support.databases import BACKENDS, database_url
from tests.support.line import ADMIN_TOKEN, running_line
from tests.support.paths import ROOT

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLES = 20  # per operation: enough to find a 5xx or a mismatch, and seconds to run
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
]


class ServedLine:
    """A whole line served from a thread with its own event loop, for a synchronous client."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.base_url = ""
        self.tickets: list[str] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="served-line", daemon=True)

    def __enter__(self) -> ServedLine:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the line did not start")
        if self._failure is not None:
            raise self._failure  # a skip (no PostgreSQL here) as well as an error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        async for url in database_url(self.backend, self.tmp_path):
            await self._serve_on(url)

    async def _serve_on(self, url: str) -> None:
        async with running_line(url) as line:
            callers = [
                ScriptedCaller(keys=["2", "2"], queue=QueuePlan(then=QueueChoice.HANGUP)),
                ScriptedCaller(keys=["0"], queue=QueuePlan(then=QueueChoice.BRIDGED)),
                ScriptedCaller(keys=["3", "1"], queue=QueuePlan(then=QueueChoice.HANGUP)),
            ]
            for caller in callers:
                record = await line.call(caller)
                self.tickets.append((await line.ticket(record.call_sid))["number"])
            self.base_url = line.base_url
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedLine]:
    with ServedLine(request.param, tmp_path_factory.mktemp("openapi")) as line:
        yield line


@pytest.fixture(scope="module")
def api_schema(served: ServedLine) -> Any:
    return schemathesis.openapi.from_url(served.base_url + "/api/openapi.json")


def documented_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the packaged document, read without a server."""
    document = yaml.safe_load(document_text())
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
        # The server-sent events stream stays open for as long as the client listens.
        and path != "/api/live/events"
    ]


def document_text() -> str:
    return (ROOT / "hotline" / "web" / "api" / "openapi.yaml").read_text(encoding="utf-8")


# Hypothesis drives schemathesis's strategies directly: its pytest plugin (`from_fixture`)
# does not run under this pytest. Each operation gets its documented examples, valid data
# and invalid data (which must be refused with a 4xx).
@pytest.mark.parametrize(("method", "path"), documented_operations())
def test_the_api_answers_as_documented(
    method: str, path: str, served: ServedLine, api_schema: Any
) -> None:
    operation = api_schema[path][method]
    strategies = [
        *operation.get_strategies_from_examples(),
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    calls = 0

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def answers_as_documented(case: Any) -> None:
        nonlocal calls
        calls += 1
        case.call_and_validate(base_url=served.base_url, headers=AUTH, checks=CHECKS)

    answers_as_documented()
    assert calls > 0


def test_the_document_is_served_without_a_token(served: ServedLine) -> None:
    response = requests.get(served.base_url + "/api/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == yaml.safe_load(document_text())
    assert response.json()["openapi"].startswith("3.")


def resources(app: web.Application) -> list[web.Resource]:
    """Every route's resource, the sub-applications' too (their canonical has the prefix)."""
    found: list[web.Resource] = []
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            found += resources(resource.get_info()["app"])
        elif isinstance(resource, web.Resource):
            found.append(resource)
    return found


def test_every_api_route_is_documented() -> None:

    from hotline.app import make_app
    from hotline.config import load_config
    from hotline.settings import Settings
    from tests.support.line import trained
    from tests.support.paths import CONFIG_DIR

    document = yaml.safe_load(document_text())
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    loaded = load_config(CONFIG_DIR)
    app = make_app(Settings(), loaded, classifier=trained(loaded.digest, CONFIG_DIR))
    routed = {
        (route.method, resource.canonical)
        for resource in resources(app)
        for route in resource
        if resource.canonical.startswith("/api/") and route.method != "HEAD"
    }
    assert routed, "no /api/ routes found"
    assert routed - documented == set(), "routes missing from openapi.yaml"
    assert {p for _, p in documented if p.startswith("/api/")} <= {p for _, p in routed}
    assert ("GET", "/healthz") in documented


def test_a_seeded_ticket_reads_as_documented(served: ServedLine, api_schema: Any) -> None:
    """The ticket the examples name exists, so the 200 branch is checked, not only 404."""
    number = served.tickets[0]
    response = requests.get(f"{served.base_url}/api/tickets/{number}", headers=AUTH, timeout=10)
    assert response.status_code == 200
    operation = api_schema.find_operation_by_path("GET", "/api/tickets/{number}")
    operation.validate_response(response)
    assert response.headers["ETag"] == f'"{response.json()["version"]}"'


def test_refusals_of_aiohttp_itself_are_json_errors(served: ServedLine) -> None:
    wrong_method = requests.delete(f"{served.base_url}/api/kpi", headers=AUTH, timeout=10)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method-not-allowed"
    assert "GET" in wrong_method.headers["Allow"]
    too_big = requests.put(
        f"{served.base_url}/api/agents/2001",
        headers=AUTH,
        json={"name": "x" * (70 * 1024)},
        timeout=10,
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "body-too-large"
    nowhere = requests.get(f"{served.base_url}/api/nowhere", headers=AUTH, timeout=10)
    assert nowhere.status_code == 404 and nowhere.json()["error"] == "not-found"


def test_a_date_past_the_calendar_is_a_bad_parameter(served: ServedLine) -> None:
    response = requests.get(
        f"{served.base_url}/api/tickets?to=9999-12-31", headers=AUTH, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid-parameter"
