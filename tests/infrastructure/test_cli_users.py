"""`hotline users` as operators run it: real processes on SQLite and PostgreSQL, the password
on standard input, or typed twice on a terminal (a pseudo-terminal here)."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotline.auth.passwords import Passwords
from hotline.store.engine import make_engine
from hotline.store.users import UserStore
from tests.support.paths import CONFIG_DIR, ROOT

PASSWORD = "correct horse battery"
LATER = datetime(2100, 1, 1, tzinfo=UTC)  # any time after the accounts were added


def env_for(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "HOTLINE_"))}
    env["HOTLINE_DATABASE_URL"] = database_url
    env["PYTHONPATH"] = str(ROOT)  # this tree's code, wherever the package is installed from
    return env


async def users(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hotline.cli", "users", *args]
    if args[0] == "add":
        command += ["--config", str(CONFIG_DIR)]
    return await asyncio.to_thread(
        subprocess.run,
        command,
        input=stdin,
        env=env_for(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_add_list_disable(db_url: str) -> None:
    added = await users(
        db_url, "add", "Zhang", "--role", "department", "--department", "tax-bureau",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added zhang (department, tax-bureau)"
    agent = await users(db_url, "add", "wang", "--role", "agent", "--agent", "1001", stdin=PASSWORD)
    assert agent.returncode == 0, agent.stderr
    assert (await users(db_url, "add", "chen", "--role", "admin", stdin=PASSWORD)).returncode == 0

    listed = await users(db_url, "list")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "DEPARTMENT/AGENT", "STATE", "CREATED", "(UTC)"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["chen", "admin", "-", "active"],
        ["wang", "agent", "1001", "active"],
        ["zhang", "department", "tax-bureau", "active"],
    ]
    assert "argon2" not in listed.stdout and PASSWORD not in listed.stdout + added.stdout

    disabled = await users(db_url, "disable", "zhang")
    assert disabled.returncode == 0
    assert "zhang" in disabled.stdout and "disabled" in (await users(db_url, "list")).stdout

    # The stored hash is an Argon2id hash of the password read from stdin, newline dropped.
    engine = make_engine(db_url)
    try:
        found = await UserStore(engine).credentials("zhang", LATER)
    finally:
        await engine.dispose()
    assert found is not None and found.password_hash.startswith("$argon2id$")
    assert Passwords().matches(found.password_hash, PASSWORD)


@pytest.mark.parametrize(
    ("args", "stdin", "error"),
    [
        (["--role", "department", "--department", "mars"], PASSWORD, "unknown department 'mars'"),
        (["--role", "department"], PASSWORD, "a department user needs --department"),
        (["--role", "agent"], PASSWORD, "an agent user needs --agent"),
        (["--role", "agent", "--agent", "9999"], PASSWORD, "unknown agent '9999'"),
        (["--role", "centre", "--department", "customs"], PASSWORD, "only for department users"),
        (["--role", "centre"], "", "the password is empty"),
        (["--role", "centre"], "\n", "the password is empty"),
        (["--role", "centre"], "short1234\n", "at least 10 characters"),
    ],
)
async def test_add_refusals(db_url: str, args: list[str], stdin: str, error: str) -> None:
    done = await users(db_url, "add", "li", *args, stdin=stdin)
    assert done.returncode == 1 and error in done.stderr, done.stderr
    assert "no accounts yet" in (await users(db_url, "list")).stdout


async def test_refusals_of_names(db_url: str) -> None:
    assert (await users(db_url, "add", "li", "--role", "centre", stdin=PASSWORD)).returncode == 0
    again = await users(db_url, "add", "LI", "--role", "admin", stdin=PASSWORD)
    assert again.returncode == 1 and "an account named 'li' exists already" in again.stderr
    phone = await users(db_url, "add", "u13812345678", "--role", "centre", stdin=PASSWORD)
    assert phone.returncode == 1 and "phone number" in phone.stderr
    gone = await users(db_url, "disable", "nobody")
    assert gone.returncode == 1 and "no account named 'nobody'" in gone.stderr


def on_terminal(database_url: str, typed: list[str]) -> tuple[int, str]:
    """`hotline users add` on a pseudo-terminal, each of `typed` answering a prompt.

    An answer is typed only once its prompt is on the screen: getpass drops what was
    typed before it asked (it flushes the terminal's input when it turns echo off)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty
        os.execve(
            sys.executable,
            [sys.executable, "-m", "hotline.cli", "users", "add", "zhao", "--role", "centre"],
            env_for(database_url),
        )
    screen = b""
    unanswered = b""
    answers = list(typed)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 1.0)[0]:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal: it is done
            break
        screen += chunk
        unanswered += chunk
        if answers and unanswered.rstrip().endswith(b":"):
            os.write(fd, answers.pop(0).encode() + b"\n")
            unanswered = b""
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


async def test_on_a_terminal_the_password_is_asked_twice_without_echo(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'tty.db'}"
    code, screen = await asyncio.to_thread(on_terminal, database, [PASSWORD, PASSWORD + "x"])
    assert code == 1 and "the two passwords differ" in screen
    code, screen = await asyncio.to_thread(on_terminal, database, [PASSWORD, PASSWORD])
    assert code == 0, screen
    assert "Password (at least 10 characters):" in screen and "The same password again:" in screen
    assert "added zhao (centre)" in screen
    assert PASSWORD not in screen  # never echoed
