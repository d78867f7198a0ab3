"""The core stays pure: the call flow, routing and casework import no I/O framework, read no
clock of their own, and a step mutates nothing it is given."""

from __future__ import annotations

import ast
import pickle
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline.config import LoadedConfig
from ivr.events import CallStarted, Event, KeyPressed, NoInput, QueueLeft
from ivr.flow import initial_state, step
from routing.queue_router import QueueExit

ROOT = Path(__file__).resolve().parent.parent.parent
CORE = ["ivr", "routing", "casework"]
# Pure rules that live beside their adapters: held to the core's rules all the same.
PURE_MODULES = ["hotline/auth/accounts.py", "hotline/auth/lockout.py"]
FORBIDDEN = {
    "aiohttp",
    "twilio",
    "sqlalchemy",
    "vosk",
    "structlog",
    "alembic",
    "asyncpg",
    "aiosqlite",
    "yaml",
    "pydantic",
    "hotline",
    "os",
    "socket",
    "requests",
    "time",
}
CLOCK_CALLS = {"now", "utcnow", "today", "monotonic", "perf_counter"}  # `time` module: FORBIDDEN


def core_modules() -> list[Path]:
    found = [p for pkg in CORE for p in (ROOT / pkg).rglob("*.py")]
    return sorted(found + [ROOT / module for module in PURE_MODULES])


def imported_packages(source: str) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    return imported


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_no_adapter(path: Path) -> None:
    imported = imported_packages(path.read_text(encoding="utf-8"))
    assert not imported & FORBIDDEN, f"{path.name} imports {sorted(imported & FORBIDDEN)}"


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in CLOCK_CALLS, (
                f"{path.name}:{node.lineno} calls .{node.func.attr}(): pass the time in instead"
            )


def test_the_check_sees_a_forbidden_import() -> None:
    # Guard against a check that can never fail: the same function must flag these.
    source = "from sqlalchemy import select\nimport aiohttp.web\nfrom . import sibling\n"
    assert imported_packages(source) & FORBIDDEN == {"sqlalchemy", "aiohttp"}


def test_a_step_mutates_nothing_it_is_given(shipped: LoadedConfig) -> None:
    """The plan, the state and the event are the same, byte for byte, after every step of a
    call: nothing is cached on them, so a plan is safe to share between calls and threads."""
    plan = shipped.plan
    state = initial_state(plan)
    noon = datetime(2026, 11, 30, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    events: list[Event] = [
        CallStarted(noon),
        NoInput(),
        KeyPressed("9"),
        KeyPressed("1"),
        KeyPressed("1"),
        QueueLeft(QueueExit.HANGUP),
    ]
    heard: list[str] = []
    for event in events:
        given = pickle.dumps((plan, state, event))
        next_state, actions = step(plan, state, event)
        assert pickle.dumps((plan, state, event)) == given, f"step changed its input on {event}"
        heard.extend(type(a).__name__ for a in actions)
        state = next_state
    assert "Gather" in heard and "TicketChange" in heard  # menus heard, the ticket changed


# Twilio's parameter and header names: known to hotline/twilio/ (the edge) and to the
# virtual carrier (which plays Twilio), and to no other module of the service.
TWILIO_NAMES = re.compile(
    r"\b(CallSid|AccountSid|ParentCallSid|Digits|SpeechResult|RecordingUrl|RecordingSid|"
    r"RecordingDuration|RecordingStatus|CallStatus|CallDuration|DialCallStatus|"
    r"DialCallSid|AnsweredBy|QueueResult|QueueTime|QueueSid|QueuePosition|AvgQueueTime|"
    r"CurrentQueueSize|MessageSid|ForwardedFrom|CallerName|"
    r"X-Twilio-Signature|I-Twilio-Idempotency-Token|X-Twilio-Webhooks-Signature-Settings)\b"
)
# Plain words that are Twilio's parameters only when a string is exactly them.
TWILIO_WORDS = {"From", "To", "Caller", "Called", "Direction"}
EDGE = ("hotline/twilio/", "hotline/carrier/")


def service_modules() -> list[Path]:
    packages = [*CORE, "speech", "hotline"]
    found = (p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))
    return sorted(p for p in found if not str(p.relative_to(ROOT)).startswith(EDGE))


def twilio_names_in(source: str) -> set[str]:
    named = set(TWILIO_NAMES.findall(source))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and node.value in TWILIO_WORDS:
            named.add(str(node.value))
    return named


@pytest.mark.parametrize("path", service_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_edge_names_twilio(path: Path) -> None:
    named = twilio_names_in(path.read_text(encoding="utf-8"))
    assert not named, f"{path.relative_to(ROOT)} names Twilio's {sorted(named)}: use the edge"


def test_the_edge_check_sees_a_twilio_name() -> None:
    source = 'sid = form.get("CallSid")\nwho = form["From"]\nheader = "X-Twilio-Signature"\n'
    assert twilio_names_in(source) == {"CallSid", "From", "X-Twilio-Signature"}
    assert twilio_names_in('"""Calls from a number to a desk."""\n') == set()


# The one write port (hotline.store.durable.TicketWrites, app key TICKETS): no handler,
# dispatcher or reader writes a ticket through a store of its own, and no SQL outside the
# store package.
STORE_KEYS = {"STORE", "CASEWORK", "JOBS"}
WRITES = {"apply", "record", "end_call", "act", "warn_due", "settle", "rate", "note"}
WRITES |= {"placed", "not_placed", "claim"}
OUTSIDE_STORE = ["hotline/web", "hotline/callbacks", "hotline/understanding", "hotline/app.py"]


def adapter_modules() -> list[Path]:
    found: list[Path] = []
    for place in OUTSIDE_STORE:
        path = ROOT / place
        found += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return found


def writes_past_the_port(source: str) -> list[str]:
    """`request.config_dict[STORE].apply(...)`-like calls: a store's write method called
    on the store's own app key, not through the port."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        if (
            node.func.attr in WRITES
            and isinstance(receiver, ast.Subscript)
            and isinstance(receiver.slice, ast.Name)
            and receiver.slice.id in STORE_KEYS
        ):
            found.append(f"{receiver.slice.id}.{node.func.attr} at line {node.lineno}")
    return found


@pytest.mark.parametrize("path", adapter_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_tickets_are_written_through_the_port(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert not writes_past_the_port(source), f"{path.name}: use the write port (TICKETS)"
    if "hotline/web" in str(path):
        sql = imported_packages(source) & {"sqlalchemy"} or {
            m for m in ("hotline.store.tables", "hotline.store.engine") if m in source
        }
        assert not sql, f"{path.name} runs SQL of its own ({sorted(sql)}): ask a store"


def test_the_port_check_sees_a_write_past_it() -> None:
    source = "await request.config_dict[STORE].apply(call, [change], now)\n"
    assert writes_past_the_port(source) == ["STORE.apply at line 1"]
    assert writes_past_the_port("await request.config_dict[TICKETS].record(c, [], n)\n") == []
