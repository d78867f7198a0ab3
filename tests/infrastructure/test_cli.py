"""The command line as operators use it: a real `hotline serve` process and `hotline call`."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from hotline.auth.pins import verify_pin
from hotline.carrier.callers import ScriptedCaller
from hotline.carrier.carrier import VirtualCarrier
from hotline.cli import main
from ivr.model import IvrPlan
from tests.support.config_files import open_all_day
from tests.support.line import free_port
from tests.support.paths import CONFIG_DIR, ROOT
from tests.support.waiting import eventually


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "HOTLINE_"))}
    env["HOTLINE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    return env


def test_serve_refuses_without_a_twilio_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "serve", "--config", str(CONFIG_DIR)],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "TWILIO_AUTH_TOKEN is not set" in done.stderr and "--trial" in done.stderr


def test_hash_pin_takes_the_digits_of_a_keypad_only(capsys: pytest.CaptureFixture[str]) -> None:
    """'²²²²' passes str.isdigit(), and its hash would be a PIN no agent can key."""
    for pin in ("²²²²", "١٢٣٤", "１２３４"):
        assert main(["agents", "hash-pin", pin]) == 2, pin
        assert "a PIN is 4 to 8 digits" in capsys.readouterr().err
    assert main(["agents", "hash-pin", "4321"]) == 0
    assert verify_pin("4321", capsys.readouterr().out.strip())


def test_serve_refuses_an_invalid_config(tmp_path: Path) -> None:
    bad = tmp_path / "config"
    bad.mkdir()
    env = clean_env(tmp_path) | {"TWILIO_AUTH_TOKEN": "x"}
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "serve", "--config", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1 and "line.yaml: (file): file is missing" in done.stderr


@pytest.fixture
def trial_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`hotline serve --trial` on the wall clock: its line open round the clock, so that a
    call is routed to a desk whatever the hour the test runs at."""
    config = open_all_day(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hotline.cli",
            "serve",
            "--trial",
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        env=clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    secrets: dict[str, str] = {}
    for _ in range(20):
        line = process.stdout.readline()
        if match := re.match(r"\s+(TWILIO_AUTH_TOKEN|HOTLINE_ADMIN_TOKEN)=(\S+)$", line):
            secrets[match.group(1)] = match.group(2)
        if "hotline call" in line:
            break
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, "the server exited at start"
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                status: int = response.status
                return status == 200
        except OSError:
            return False

    try:
        asyncio.run(eventually(answers, f"{base} started", timeout_s=60, every_s=0.1))
        yield base, secrets
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)


async def test_trial_server_takes_a_signed_call(trial_server: tuple[str, dict[str, str]]) -> None:
    base, secrets = trial_server
    assert set(secrets) == {"TWILIO_AUTH_TOKEN", "HOTLINE_ADMIN_TOKEN"}
    async with aiohttp.ClientSession() as session:
        carrier = VirtualCarrier(base, secrets["TWILIO_AUTH_TOKEN"], session)
        record = await carrier.place_call(ScriptedCaller(keys=["2", "2"]))
        assert [(q.queue, q.result) for q in record.queue_results] == [
            ("desk-tax-invoice", "bridged")
        ]
        headers = {"Authorization": f"Bearer {secrets['HOTLINE_ADMIN_TOKEN']}"}
        async with session.get(
            f"{base}/api/tickets?call_sid={record.call_sid}", headers=headers
        ) as response:
            found = await response.json()
    assert found["tickets"][0]["specialty"] == "tax-invoice"


def test_hotline_call_is_a_terminal_phone(
    trial_server: tuple[str, dict[str, str]], tmp_path: Path, plan: IvrPlan
) -> None:
    base, secrets = trial_server
    env = clean_env(tmp_path) | secrets
    # Keys 2 then 1 (tax registration); in the queue an agent answers.
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "call", "--url", base],
        input="2\n1\na\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    registration = plan.specialties["tax-registration"].name["zh"]
    assert plan.prompts.connecting["zh"].format(desk=registration) in done.stdout
    assert "desk-tax-registration" in done.stdout
    assert re.search(r"E\d{8}-\d{6}", done.stdout)
