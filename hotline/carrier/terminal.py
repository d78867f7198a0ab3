"""A phone on the operator's terminal: `hotline call` rings the service through the carrier.

The person at the keyboard plays the caller. Reading the keyboard blocks, so
it happens in a worker thread; the event loop stays free for the HTTP side.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TextIO

import aiohttp

from hotline.carrier.callers import (
    HANG_UP,
    Caller,
    GatherInfo,
    HangUp,
    Heard,
    QueueChoice,
    QueueInfo,
    RecordInfo,
    Recording,
)
from hotline.carrier.carrier import DEFAULT_ACCOUNT_SID, CallRecord, VirtualCarrier

EXIT_OK = 0
EXIT_CALL_FAILED = 1  # application error, loop guard, or the ticket lookup failed
EXIT_UNREACHABLE = 2  # the server never answered


class TerminalCaller:
    """Prints what the caller hears and asks the operator what the caller does."""

    def __init__(self, *, read: Callable[[str], str] = input, out: TextIO | None = None) -> None:
        self._read = read
        self._out = out or sys.stdout

    def _print(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    async def _ask(self, prompt: str) -> str | None:
        """One line from the operator; None when the input is closed (Ctrl-D)."""
        try:
            return (await asyncio.to_thread(self._read, prompt)).strip()
        except EOFError:
            return None

    async def hear(self, item: Heard) -> None:
        where = f" (holding in {item.queue})" if item.queue else ""
        if item.kind == "say":
            language = item.language or "en-US"
            voice = f", {item.voice}" if item.voice else ""
            self._print(f"  say [{language}{voice}]{where}: {item.text}")
        elif item.kind == "play":
            sound = f"tones {item.digits}" if item.digits else item.text
            self._print(f"  play{where}: {sound}")
        else:
            self._print(f"  pause {item.seconds:g}s{where}")

    async def press(self, prompt: GatherInfo) -> str | HangUp | None:
        limits = [f"{prompt.num_digits} digits"] if prompt.num_digits else []
        if prompt.finish_on_key:
            limits.append(f"end with {prompt.finish_on_key}")
        if "dtmf" not in prompt.input:
            limits.append("speech only: keys are ignored")
        hint = f" ({', '.join(limits)})" if limits else ""
        line = await self._ask(f"keys{hint} [empty = no input, q = hang up]> ")
        if line is None or line.lower() == "q":
            return HANG_UP
        return line or None

    async def record(self, prompt: RecordInfo) -> Recording | HangUp | None:
        if prompt.play_beep:
            self._print("  (beep)")
        while True:
            line = await self._ask(
                f"recording, max {prompt.max_length:g}s: seconds spoken "
                "[empty = silence, q = hang up]> "
            )
            if line is None or line.lower() == "q":
                return HANG_UP
            if not line:
                return None
            try:
                return Recording(duration=float(line))
            except ValueError:
                self._print("  please type a number of seconds")

    async def in_queue(self, info: QueueInfo) -> QueueChoice:
        self._print(
            f"  in queue {info.queue}: position {info.position} of {info.size}, "
            f"waited {info.queue_time}s"
        )
        while True:
            line = await self._ask("[w]ait (default), an [a]gent answers, [h]ang up> ")
            if line is None:
                return QueueChoice.HANGUP
            choice = {
                "": QueueChoice.WAIT,
                "w": QueueChoice.WAIT,
                "a": QueueChoice.BRIDGED,
                "h": QueueChoice.HANGUP,
            }.get(line.lower()[:1])
            if choice is not None:
                return choice


async def run_terminal_call(
    url: str,
    auth_token: str,
    from_number: str,
    *,
    public_url: str | None = None,
    admin_token: str | None = None,
    to_number: str = "+8610123450000",
    account_sid: str = DEFAULT_ACCOUNT_SID,
    caller: Caller | None = None,
    out: TextIO | None = None,
) -> int:
    """Place one call to the server at `url`, print how it went; returns an exit code."""
    stream = out or sys.stdout

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    async with aiohttp.ClientSession() as session:
        carrier = VirtualCarrier(
            url, auth_token, session, public_url=public_url, account_sid=account_sid
        )
        say(f"calling {carrier.url_for(carrier.voice_path)} from {from_number}")
        record = await carrier.place_call(
            caller or TerminalCaller(out=stream), from_number=from_number, to_number=to_number
        )
        for line in _summary(record):
            say(line)
        if not any(exchange.status for exchange in record.exchanges):
            return EXIT_UNREACHABLE
        code = EXIT_OK
        if record.application_error or record.ended_by == "loop-guard":
            code = EXIT_CALL_FAILED
        if admin_token is not None:
            numbers = await _ticket_numbers(session, url, admin_token, record.call_sid)
            if numbers is None:
                say("ticket lookup failed")
                return EXIT_CALL_FAILED
            say("tickets: " + (", ".join(numbers) if numbers else "none for this call"))
        return code


def _summary(record: CallRecord) -> list[str]:
    lines = [
        f"call {record.call_sid} ended: {record.ended_by} "
        f"({record.call_status}, {round(record.duration)}s simulated)",
        f"last URL: {record.last_url or '-'}",
    ]
    for result in record.queue_results:
        lines.append(
            f"queue {result.queue}: {result.result} after {result.queue_time}s "
            f"({result.loops} hold rounds)"
        )
    if record.application_error:
        lines.append(f"application error: {record.application_error}")
    lines.extend(f"warning: {warning}" for warning in record.warnings)
    return lines


async def _ticket_numbers(
    session: aiohttp.ClientSession, url: str, admin_token: str, call_sid: str
) -> list[str] | None:
    """Ticket numbers the server filed for this call, or None if it could not tell us."""
    try:
        async with session.get(
            url.rstrip("/") + "/api/tickets",
            params={"call_sid": call_sid},
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=aiohttp.ClientTimeout(total=15),
        ) as response:
            if response.status != 200:
                return None
            payload: object = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    tickets = payload.get("tickets") if isinstance(payload, dict) else None
    if not isinstance(tickets, list):
        return None
    return [
        str(ticket["number"])
        for ticket in tickets
        if isinstance(ticket, dict) and "number" in ticket
    ]
