"""Typed settings of one server process, read from the environment by the command line only."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from casework.phone import parse
from hotline.auth.tokens import plain_token

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/hotline.db"


class SettingsError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    config_dir: Path = Path("config")
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = DEFAULT_DATABASE_URL
    # The secret Twilio signs webhooks with (the account's auth token).
    twilio_auth_token: str = ""
    twilio_account_sid: str = ""
    # Signs webhooks instead of the auth token where a Twilio Webhook Rule says HMAC-SHA256.
    twilio_webhook_shared_key: str = ""
    # The base URL Twilio calls (scheme and host as Twilio sees them, behind any proxy).
    public_url: str = ""
    admin_token: str = ""
    log_level: str = "info"
    max_body_bytes: int = 64 * 1024
    config_poll_s: float = 2.0
    models_dir: Path = Path("models")
    # Recognition worker processes; 0 turns speech off (callers get the key menu).
    speech_workers: int = 0
    # Where recordings may be fetched from (the webhook names the URL).
    recording_url_prefixes: tuple[str, ...] = ("https://api.twilio.com/",)
    # The hotline's number, shown on callbacks and surveys; empty: no calls are placed.
    caller_id: str = ""
    # Another base URL for Twilio's REST API (a staging stand-in); empty: Twilio's own.
    twilio_api_base: str = ""
    dispatch_every_s: float = 10.0
    due_sweep_s: float = 300.0  # how often soon-due and overdue tickets are looked for
    # Shared state of several processes (rate limits, the live view, the speech job queue);
    # empty: one process, all of it local.
    redis_url: str = ""
    # Ticket writes the database cannot take in time are kept here until it can (one file
    # per process; see store/spool.py).
    spool_path: Path = Path("var/spool.db")
    spool_replay_every_s: float = 1.0
    # A webhook waits this long for its ticket write (then spools it) and for a database
    # read (then does without): Twilio plays its application error after 15 s.
    ticket_write_budget_s: float = 1.0
    database_read_budget_s: float = 0.5
    redis_prefix: str = "hotline:"  # of every key and channel, so lines can share a Redis
    redis_timeout_s: float = 0.3  # per Redis operation: a dead Redis never holds a webhook
    redis_retry_s: float = 2.0  # while Redis is away: local state, reconnecting this often
    # New calls a minute one caller number may make (more are politely refused), and
    # requests a minute one API token may make (more answer 429); 0: no limit.
    calls_per_caller_per_min: int = 10
    api_requests_per_token_per_min: int = 120
    live_poll_s: float = 1.0  # the live view re-reads the line at least this often
    # Where recognition runs: "local" (worker processes of this server) or "queue"
    # (`hotline speech-worker` processes, fed through `speech_queue` on Redis; by default
    # under `redis_prefix`).
    speech_mode: str = "local"
    speech_queue: str = "hotline:speech"
    # A person's session on the service's pages ends after this long without a request.
    session_idle_s: float = 30 * 60

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: object) -> Settings:
        settings = cls(
            database_url=env.get("HOTLINE_DATABASE_URL") or DEFAULT_DATABASE_URL,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            twilio_webhook_shared_key=env.get("TWILIO_WEBHOOK_SHARED_KEY", ""),
            public_url=env.get("HOTLINE_PUBLIC_URL", "").rstrip("/"),
            admin_token=env.get("HOTLINE_ADMIN_TOKEN", ""),
            log_level=env.get("HOTLINE_LOG_LEVEL", "info"),
            models_dir=Path(env.get("HOTLINE_MODELS_DIR") or "models"),
            speech_workers=int(env.get("HOTLINE_SPEECH_WORKERS") or (os.cpu_count() or 1)),
            caller_id=env.get("HOTLINE_CALLER_ID", ""),
            twilio_api_base=env.get("HOTLINE_TWILIO_API_BASE", "").rstrip("/"),
            redis_url=env.get("HOTLINE_REDIS_URL", ""),
            spool_path=Path(env.get("HOTLINE_SPOOL_PATH") or "var/spool.db"),
            redis_prefix=env.get("HOTLINE_REDIS_PREFIX") or "hotline:",
            calls_per_caller_per_min=int(env.get("HOTLINE_CALLS_PER_CALLER_PER_MIN") or 10),
            api_requests_per_token_per_min=int(env.get("HOTLINE_API_REQUESTS_PER_MIN") or 120),
            speech_mode=(env.get("HOTLINE_SPEECH") or "local").strip().lower(),
            speech_queue=env.get("HOTLINE_SPEECH_QUEUE")
            or (env.get("HOTLINE_REDIS_PREFIX") or "hotline:") + "speech",
            session_idle_s=60 * float(env.get("HOTLINE_SESSION_IDLE_MINUTES") or 30),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given)  # type: ignore[arg-type]

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over TLS when people reach the service over https."""
        return self.public_url.lower().startswith("https://")

    def for_trial(self) -> Settings:
        """A local trial without a Twilio account: made-up secrets, printed for the operator."""
        return replace(
            self,
            twilio_auth_token=self.twilio_auth_token or secrets.token_hex(16),
            admin_token=self.admin_token or secrets.token_urlsafe(18),
        )

    def check_can_serve(self) -> None:
        if not self.twilio_auth_token:
            raise SettingsError(
                "TWILIO_AUTH_TOKEN is not set: webhooks could not be checked. Set it to the "
                "account's auth token, or run `hotline serve --trial` for a local trial."
            )
        if self.admin_token and not plain_token(self.admin_token):
            raise SettingsError(
                "HOTLINE_ADMIN_TOKEN must be printable ASCII without spaces (at most 512 "
                "characters): no client could send it in an Authorization header"
            )
        self.check_speech_mode()
        self.check_caller_id()

    def check_speech_mode(self) -> None:
        if self.speech_mode not in ("local", "queue"):
            raise SettingsError(f"HOTLINE_SPEECH={self.speech_mode!r}: use local or queue")
        if self.speech_mode == "queue" and not self.redis_url:
            raise SettingsError("HOTLINE_SPEECH=queue needs HOTLINE_REDIS_URL (the job queue)")

    def check_caller_id(self) -> None:
        """Twilio takes only E.164 as the From of a call it places: a wrong one would fail
        every callback at the dispatcher, found out only in its log."""
        number = parse(self.caller_id) if self.caller_id else None
        if self.caller_id and (number is None or number.e164 != self.caller_id):
            hint = f" ({number.e164}?)" if number else ""
            raise SettingsError(
                f"HOTLINE_CALLER_ID={self.caller_id!r}: write the hotline's number in E.164{hint}"
            )
