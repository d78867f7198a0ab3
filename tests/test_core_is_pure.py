"""The call flow and routing rules stay pure: no I/O frameworks, no clock of their own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ["ivr", "routing"]
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
    return sorted(p for pkg in CORE for p in (ROOT / pkg).rglob("*.py"))


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
