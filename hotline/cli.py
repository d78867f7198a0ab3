"""`hotline`: serve, check the config, upgrade the database, place a test call."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from hotline.auth.accounts import AccountRole
from hotline.config import ConfigInvalid, LoadedConfig, load_config
from hotline.observability import logs
from hotline.settings import Settings, SettingsError
from hotline.store.engine import make_engine, upgrade


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    code: int = args.run(args)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__)
    sub = parser.add_subparsers(metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the webhook server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--config", type=Path, default=Path("config"), metavar="DIR")
    serve.add_argument(
        "--trial",
        action="store_true",
        help="local trial without a Twilio account: make up the secrets and print them",
    )
    serve.set_defaults(run=_serve)

    config = sub.add_parser("config", help="the YAML configuration")
    config_sub = config.add_subparsers(metavar="ACTION")
    check = config_sub.add_parser("check", help="validate a config directory (like nginx -t)")
    check.add_argument("directory", type=Path, nargs="?", default=Path("config"))
    check.set_defaults(run=_config_check)

    db = sub.add_parser("db", help="the ticket database")
    db_sub = db.add_subparsers(metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="migrate the schema to the newest version")
    up.set_defaults(run=_db_upgrade)

    speech = sub.add_parser("speech", help="the offline speech model")
    speech_sub = speech.add_subparsers(metavar="ACTION")
    fetch = speech_sub.add_parser("fetch-model", help="install the Mandarin model, verified")
    fetch.add_argument("--models", type=Path, default=None, metavar="DIR")
    fetch.set_defaults(run=_fetch_model)

    classify = sub.add_parser("classify", help="which desk a sentence is about (JSON)")
    classify.add_argument("text", nargs="?", help="one utterance; none: one per stdin line")
    classify.add_argument("--lang", choices=["zh", "en"], default=None)
    classify.add_argument("--config", type=Path, default=Path("config"), metavar="DIR")
    classify.set_defaults(run=_classify)

    transcribe = sub.add_parser("transcribe", help="what the recognizer hears in recordings")
    transcribe.add_argument("files", nargs="+", type=Path)
    transcribe.add_argument("--lang", choices=["zh", "en"], default="zh")
    transcribe.add_argument("--config", type=Path, default=Path("config"), metavar="DIR")
    transcribe.set_defaults(run=_transcribe)

    speech_worker = sub.add_parser(
        "speech-worker", help="recognise for the webhook servers, from the queue on Redis"
    )
    speech_worker.add_argument("--config", type=Path, default=Path("config"), metavar="DIR")
    speech_worker.add_argument(
        "--workers", type=int, default=None, help="decoding processes (HOTLINE_SPEECH_WORKERS)"
    )
    speech_worker.add_argument("--queue", default=None, help="queue name (HOTLINE_SPEECH_QUEUE)")
    speech_worker.set_defaults(run=_speech_worker)

    agents = sub.add_parser("agents", help="the agents of config/agents.yaml")
    agents_sub = agents.add_subparsers(metavar="ACTION")
    hash_pin = agents_sub.add_parser("hash-pin", help="the pin_hash of a PIN, for agents.yaml")
    hash_pin.add_argument("pin", nargs="?", help="the PIN; none: asked without echo")
    hash_pin.set_defaults(run=_hash_pin)

    departments = sub.add_parser("departments", help="the departments' access to the ops API")
    departments_sub = departments.add_subparsers(metavar="ACTION")
    token = departments_sub.add_parser(
        "token", help="a new bearer token of a department, and its line for access.yaml"
    )
    token.add_argument("department", help="a department id of specialties.yaml")
    token.add_argument("--config", type=Path, default=Path("config"), metavar="DIR")
    token.set_defaults(run=_department_token)

    users = sub.add_parser("users", help="people's accounts for the service's pages")
    users_sub = users.add_subparsers(metavar="ACTION")
    add = users_sub.add_parser(
        "add",
        help="a new account; its password asked twice (a terminal) or read from one stdin line",
    )
    add.add_argument("name", help="the username: lower-case letters, digits, '.', '_', '-'")
    add.add_argument("--role", required=True, choices=[r.value for r in AccountRole])
    add.add_argument("--department", default=None, help="department staff: a department id")
    add.add_argument("--agent", default=None, help="agents: the agent id")
    add.add_argument("--config", type=Path, default=Path("config"), metavar="DIR")
    add.set_defaults(run=_users_add)
    listing = users_sub.add_parser("list", help="every account (never a password or its hash)")
    listing.set_defaults(run=_users_list)
    disable = users_sub.add_parser("disable", help="an account that may no longer log in")
    disable.add_argument("name")
    disable.set_defaults(run=_users_disable)

    report = sub.add_parser("report", help="KPIs of a period: a table and a chart image")
    report.add_argument("--from", dest="first_day", type=_day, required=True, metavar="DATE")
    report.add_argument("--to", dest="last_day", type=_day, required=True, metavar="DATE")
    report.add_argument("--by", choices=["department", "district"], default="department")
    report.add_argument("--chart", type=Path, default=None, metavar="FILE.png")
    report.add_argument("--database", default=None, metavar="URL")
    report.add_argument("--config", type=Path, default=Path("config"), metavar="DIR")
    report.add_argument("--lang", default=None, help="names in the table (default: the line's)")
    report.set_defaults(run=_report)

    spool = sub.add_parser("spool", help="ticket writes kept while the database was away")
    spool_sub = spool.add_subparsers(metavar="ACTION")
    replay = spool_sub.add_parser(
        "replay", help="put a spool file's ticket writes into HOTLINE_DATABASE_URL, once"
    )
    replay.add_argument("--file", type=Path, required=True, metavar="SPOOL.db")
    replay.add_argument("--config", type=Path, default=Path("config"), metavar="DIR")
    replay.set_defaults(run=_spool_replay)

    call = sub.add_parser("call", help="place a test call from this terminal")
    call.add_argument("--url", default="http://127.0.0.1:8080")
    call.add_argument("--from", dest="from_number", default="+8613812348000")
    call.set_defaults(run=_call)
    return parser


def _load(directory: Path) -> LoadedConfig | None:
    try:
        return load_config(directory)
    except ConfigInvalid as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{directory}: {len(exc.errors)} error(s); nothing was started", file=sys.stderr)
        return None


def _config_check(args: argparse.Namespace) -> int:
    loaded = _load(args.directory)
    if loaded is None:
        return 1
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    plan = loaded.plan
    print(
        f"{args.directory}: ok ({len(plan.specialties)} specialties, {len(plan.menus)} menus, "
        f"languages {', '.join(plan.language_codes())}; digest {loaded.digest})"
    )
    calendar = plan.calendar
    years = ", ".join(str(y) for y in calendar.years()) or "none"
    counted = "working days" if calendar.working_days else "calendar days"
    # Holidays are published a year at a time; ops see here whether next year's are in.
    print(f"feedback days: {counted}; holidays listed for: {years}")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)

    async def run() -> None:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("database schema is up to date")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from hotline.app import make_app

    settings = Settings.from_env(os.environ, host=args.host, port=args.port, config_dir=args.config)
    logs.configure(settings.log_level)
    if args.trial and not settings.twilio_auth_token:
        settings = settings.for_trial()
        base = f"http://{settings.host}:{settings.port}"
        print("Local trial: these secrets were made up for this run only.")
        print(f"  TWILIO_AUTH_TOKEN={settings.twilio_auth_token}")
        print(f"  HOTLINE_ADMIN_TOKEN={settings.admin_token}")
        print("Place a test call from another terminal with:")
        print(
            f"  TWILIO_AUTH_TOKEN={settings.twilio_auth_token} "
            f"HOTLINE_ADMIN_TOKEN={settings.admin_token} hotline call --url {base}",
            flush=True,
        )
    try:
        settings.check_can_serve()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    loaded = _load(settings.config_dir)
    if loaded is None:
        return 1
    web.run_app(
        make_app(settings, loaded),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
    )
    return 0


def _spool_replay(args: argparse.Namespace) -> int:
    from hotline.store.durable import replay_file
    from hotline.store.tickets import TicketStore

    if not args.file.is_file():
        print(f"{args.file}: no such spool file", file=sys.stderr)
        return 2
    settings = Settings.from_env(os.environ)
    loaded = _load(args.config)
    if loaded is None:
        return 1
    plan = loaded.plan

    async def run() -> int:
        engine = make_engine(settings.database_url)
        store = TicketStore(engine, plan.hours.zone, plan.default_language, lambda: plan.calendar)
        try:
            await upgrade(engine)
            result, left = await replay_file(args.file, store, lambda: datetime.now(UTC))
        finally:
            await store.aclose()
            await engine.dispose()
        print(f"applied {result.applied}, set aside {result.set_aside}, left {left}")
        for problem in result.errors:
            print(f"set aside: {problem}", file=sys.stderr)
        if result.stalled:
            print("the database stopped answering; run it again", file=sys.stderr)
        return 0 if left == 0 and not result.set_aside else 1

    return asyncio.run(run())


def _hash_pin(args: argparse.Namespace) -> int:
    import getpass

    from hotline.auth.pins import hash_pin

    pin = args.pin if args.pin is not None else getpass.getpass("PIN: ")
    if not (pin.isascii() and pin.isdigit()) or not 4 <= len(pin) <= 8:  # not "²²²²"
        print("a PIN is 4 to 8 digits", file=sys.stderr)
        return 2
    print(hash_pin(pin))
    return 0


def _department_token(args: argparse.Namespace) -> int:
    from hotline.auth.tokens import new_token, token_digest

    loaded = _load(args.config)
    if loaded is None:
        return 1
    if args.department not in loaded.departments:
        print(f"unknown department {args.department!r} (see specialties.yaml)", file=sys.stderr)
        return 2
    token = new_token()
    print(f"token of {args.department} (hand it over; only its digest is kept): {token}")
    print(f"add to {args.config / 'access.yaml'}, under departments:")
    print(f"  {args.department}:")
    print(f"    - {token_digest(token)}")
    return 0


def _users_add(args: argparse.Namespace) -> int:
    from hotline.cli_users import add_user

    return add_user(args, _load)


def _users_list(args: argparse.Namespace) -> int:
    from hotline.cli_users import list_users

    return list_users(args)


def _users_disable(args: argparse.Namespace) -> int:
    from hotline.cli_users import disable_user

    return disable_user(args)


def _fetch_model(args: argparse.Namespace) -> int:
    from speech.models import ModelFetchError, fetch_model

    models = args.models or Settings.from_env(os.environ).models_dir
    try:
        fetch_model(models)
    except ModelFetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _classify(args: argparse.Namespace) -> int:
    from speech.classifier import SpecialtyClassifier

    loaded = _load(args.config)
    if loaded is None:
        return 1
    classifier = SpecialtyClassifier.train(loaded.examples)
    lines = [args.text] if args.text is not None else (line.rstrip("\n") for line in sys.stdin)
    for text in lines:
        result = classifier.classify(text, args.lang)
        print(
            json.dumps(
                {
                    "text": text,
                    "top": [
                        {
                            "specialty": d,
                            "score": round(p, 3),
                            "name": loaded.plan.specialties[d].display_name(args.lang or "zh"),
                        }
                        for d, p in result.candidates
                    ],
                    "appeal": result.appeal,
                    "appeal_score": round(result.appeal_score, 3),
                },
                ensure_ascii=False,
            ),
            flush=True,
        )
    return 0


def _speech_worker(args: argparse.Namespace) -> int:
    from hotline.understanding.worker import speech_worker

    settings = Settings.from_env(os.environ, speech_queue=args.queue)
    logs.configure(settings.log_level)
    if not settings.redis_url:
        print("HOTLINE_REDIS_URL must name the Redis of the speech queue", file=sys.stderr)
        return 2
    workers = args.workers if args.workers is not None else settings.speech_workers
    if workers < 1:
        print("a speech worker needs at least one decoding process (--workers)", file=sys.stderr)
        return 2
    loaded = _load(args.config)
    if loaded is None:
        return 1
    zh = loaded.speech.zh_model
    if zh and not (settings.models_dir / zh / "am" / "final.mdl").is_file():
        print(
            f"no model in {settings.models_dir / zh}: run `hotline speech fetch-model`",
            file=sys.stderr,
        )
        return 1
    speech_worker(settings, loaded, workers).run()
    return 0


def _transcribe(args: argparse.Namespace) -> int:
    from hotline.understanding.understander import speech_engines
    from speech.audio import AudioError
    from speech.examples import grammar_texts
    from speech.pool import recognise_with

    loaded = _load(args.config)
    if loaded is None:
        return 1
    engines = speech_engines(Settings.from_env(os.environ).models_dir, loaded)
    recognizer = engines.build()[args.lang]
    texts = grammar_texts(loaded.examples, args.lang)
    code = 0
    for path in args.files:
        try:
            transcript = recognise_with(recognizer, engines, path.read_bytes(), texts)
        except (AudioError, OSError) as exc:
            print(json.dumps({"file": str(path), "error": str(exc)}, ensure_ascii=False))
            code = 1
            continue
        print(
            json.dumps(
                {
                    "file": str(path),
                    "free": transcript.free,
                    "grammar": transcript.grammar,
                    "audio_s": round(transcript.audio_s, 2),
                    "decode_s": round(transcript.decode_s, 3),
                },
                ensure_ascii=False,
            )
        )
    return code


def _day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date (YYYY-MM-DD)") from None


def _report(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from casework.kpi import KpiDimension
    from hotline.kpi.report import chart, group_names, table
    from hotline.store.kpi import KpiReport, kpi_report

    if args.last_day < args.first_day:
        print("--to must not be before --from", file=sys.stderr)
        return 2
    loaded = _load(args.config)
    if loaded is None:
        return 1
    zone = loaded.plan.hours.zone
    start = datetime.combine(args.first_day, time(0, 0), tzinfo=zone)
    end = datetime.combine(args.last_day + timedelta(days=1), time(0, 0), tzinfo=zone)
    by = KpiDimension(args.by)
    names = group_names(loaded, by)
    url = args.database or Settings.from_env(os.environ).database_url

    async def run() -> KpiReport:
        engine = make_engine(url)
        try:
            return await kpi_report(engine, start, end, datetime.now(UTC), by, names)
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(run())
    except (SQLAlchemyError, OSError) as exc:
        print(f"cannot read the tickets: {exc}", file=sys.stderr)
        return 1
    print(table(report, names, args.lang or loaded.plan.default_language))
    path = args.chart or Path(f"kpi-{args.first_day}-{args.last_day}.png")
    chart(report, names, path, args.first_day, args.last_day)
    print(f"\nchart: {path}")
    return 0


def _call(args: argparse.Namespace) -> int:
    from hotline.carrier.terminal import run_terminal_call

    settings = Settings.from_env(os.environ)
    if not settings.twilio_auth_token:
        print(
            "TWILIO_AUTH_TOKEN must be set to the server's token to sign the call", file=sys.stderr
        )
        return 2
    return asyncio.run(
        run_terminal_call(
            args.url,
            settings.twilio_auth_token,
            args.from_number,
            public_url=settings.public_url or None,
            admin_token=settings.admin_token or None,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
