"""Issue 13: errors a telecom engineer can act on, from the `switchboard` command itself.

Each test runs `switchboard` as a real process: a bad ``--dsn`` is one line and
no traceback for every command that takes one (exit 2 for a DSN that does not
parse, 1 for a database that cannot be reached or refuses it, as the database
commands always said), an empty ARI password is refused by `check` and by `run`
naming where it came from, ``--log-level`` / ``SWITCHBOARD_LOG_LEVEL`` and
``NO_COLOR`` shape the log, and ``--version`` says the package's version.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from switchboard.cli import _parser
from tests.test_agi_cli import free_port, server_env
from tests.test_ari_auth import Lines

ROOT = Path(__file__).resolve().parent.parent
OFFICE = ROOT / "examples" / "office.yaml"
DB_USER, SECRET = "switchboard", "S3cretPw"  # the one never shown
ARI_USER, ARI_PASSWORD = "switchboard", "ari-test"
TIMEOUT = 60.0  # s, a guard: every wait below ends on a line or an exit


def env(**extra: str) -> dict[str, str]:
    """This environment without a database, an ARI password or a log level of its own."""
    base = server_env(**extra)
    for name in ("SWITCHBOARD_ARI_PASSWORD", "SWITCHBOARD_LOG_LEVEL", "NO_COLOR"):
        if name not in extra:
            base.pop(name, None)
    return base


def switchboard(
    *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        cwd=ROOT, env=environ if environ is not None else env(), capture_output=True,
        text=True, timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command wrote on stderr; nothing on stdout, no traceback."""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert done.stdout == ""
    return lines[0]


def test_version_is_the_installed_packages() -> None:
    done = switchboard("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"switchboard {importlib.metadata.version('switchboard')}\n"


# --- a bad --dsn ---------------------------------------------------------------------------

PERIOD = ("--from", "2026-12-01", "--to", "2026-12-02")
# every command that takes --dsn, with what else it needs
DSN_COMMANDS: dict[str, tuple[str, ...]] = {
    "db migrate": (),
    "messages": (),
    "messages mark": ("1", "heard"),
    "recordings prune": ("--keep-days", "30"),
    "contacts import": ("{csv}", "--config", str(OFFICE)),
    "config import": (str(OFFICE),),
    "config export": (),
    "config list": (),
    "config activate": ("1",),
    "agents list": (),
    "agents login": ("ivanov",),
    "agents logout": ("ivanov",),
    "agents pause": ("ivanov",),
    "agents resume": ("ivanov",),
    "vip list": (),
    "vip add": ("79161234567", "5"),
    "vip remove": ("79161234567",),
    "tokens create": ("ops",),
    "tokens list": (),
    "tokens revoke": ("ops",),
    "report": PERIOD,
    "calls export": PERIOD,
    "run": ("--from-db",),
    "agi": ("--from-db",),
}


def commands_with_dsn(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= commands_with_dsn(sub, f"{prefix} {name}".strip())
        elif "--dsn" in action.option_strings:
            found.add(prefix)
    return found


def test_the_list_below_has_every_command_that_takes_dsn() -> None:
    assert commands_with_dsn(_parser()) == set(DSN_COMMANDS)


def invoke(command: str, dsn: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    csv = tmp_path / "contacts.csv"
    csv.write_text("79161234567,ivanov\n")
    rest = [part.format(csv=csv) for part in DSN_COMMANDS[command]]
    return switchboard(*command.split(), *rest, "--dsn", dsn)


@pytest.mark.parametrize("command", DSN_COMMANDS)
def test_a_dsn_that_does_not_parse_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    done = invoke(command, f"postgresql://{DB_USER}:{SECRET}@db.example:no-port/calls", tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    line = one_line(done)
    assert line == (
        f"switchboard {command}: invalid DSN: it does not parse (use "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, with / ? # @ : in the password "
        "percent-encoded)"
    )


@pytest.mark.parametrize(
    "command", ["db migrate", "messages", "contacts import", "config export", "report", "run"]
)
def test_a_dsn_asyncpg_rejects_says_why_in_one_line(command: str, tmp_path: Path) -> None:
    done = invoke(command, "mysql://switchboard@db.example/calls", tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert one_line(done).startswith(
        f"switchboard {command}: invalid DSN: scheme is expected to be either "
        '"postgresql" or "postgres", got \'mysql\' (use postgresql://'
    )


@pytest.mark.parametrize(
    "command",
    ["db migrate", "messages", "contacts import", "config import", "agents list", "run", "agi"],
)
def test_a_database_nobody_listens_for_is_one_line_and_exit_1(command: str, tmp_path: Path) -> None:
    port = free_port()
    done = invoke(command, f"postgresql://{DB_USER}:{SECRET}@127.0.0.1:{port}/calls", tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    line = one_line(done)
    where = "cannot read the configuration: " if command in ("run", "agi") else ""
    assert line == (
        f"switchboard {command}: {where}cannot connect: PostgreSQL at 127.0.0.1:{port}/calls "
        "(user switchboard): connection refused: is PostgreSQL running, listening on that "
        "host and port?"
    )
    assert SECRET not in done.stderr


@pytest.mark.parametrize("command", ["db migrate", "messages", "tokens list"])
def test_a_database_that_does_not_exist_is_named_in_one_line(
    command: str, pg_server: str, tmp_path: Path
) -> None:
    dsn = pg_server.rsplit("/", 1)[0] + "/no_such_db"
    parts = urlsplit(dsn)
    done = invoke(command, dsn, tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert one_line(done) == (
        f"switchboard {command}: cannot connect: PostgreSQL at {parts.hostname}:{parts.port}"
        f'/no_such_db (user {parts.username}): database "no_such_db" does not exist: create '
        "it, or fix the DSN's database name"
    )


@pytest.mark.parametrize("command", ["run", "agi"])
def test_run_and_agi_refuse_a_records_dsn_that_does_not_parse(command: str) -> None:
    """A database that is down may come back (they start and keep the records); a DSN
    that does not parse never will."""
    done = switchboard(
        command,
        str(OFFICE),
        environ=env(
            SWITCHBOARD_DSN=f"postgresql://{DB_USER}:{SECRET}@db.example:no-port/calls",
            SWITCHBOARD_ARI_URL=f"http://127.0.0.1:{free_port()}",
            SWITCHBOARD_ARI_PASSWORD=ARI_PASSWORD,
            SWITCHBOARD_AGI_LISTEN="127.0.0.1:0",
        ),
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert one_line(done).startswith(f"switchboard {command}: database: invalid DSN: ")
    assert SECRET not in done.stderr


# --- an empty ARI password -----------------------------------------------------------------


def test_check_refuses_an_empty_ari_password_on_its_line(tmp_path: Path) -> None:
    text = OFFICE.read_text() + 'asterisk:\n  ari_user: acd\n  ari_password: ""\n'
    config = tmp_path / "company.yaml"
    config.write_text(text)
    done = switchboard("check", str(config))
    assert done.returncode == 2
    assert done.stdout.splitlines() == [
        f"{config}:{text.count(chr(10))}: asterisk.ari_password: empty: Asterisk refuses an "
        "ARI user with no password; give the one in ari.conf, or leave the key out and set "
        "SWITCHBOARD_ARI_PASSWORD"
    ]


def test_run_without_an_ari_password_names_both_places_it_could_come_from() -> None:
    done = switchboard(
        "run", str(OFFICE), environ=env(SWITCHBOARD_ARI_URL=f"http://127.0.0.1:{free_port()}")
    )
    assert done.returncode == 2
    assert one_line(done) == (
        "switchboard run: no ARI password: the configuration's asterisk: section has no "
        "ari_password and SWITCHBOARD_ARI_PASSWORD is not set; give the password of "
        "[switchboard] in Asterisk's ari.conf in one of them"
    )


def test_run_with_an_empty_switchboard_ari_password_names_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "company.yaml"
    config.write_text(
        OFFICE.read_text() + f"asterisk:\n  ari_user: acd\n  ari_password: {SECRET}\n"
    )
    done = switchboard(
        "run",
        str(config),
        environ=env(
            SWITCHBOARD_ARI_URL=f"http://127.0.0.1:{free_port()}", SWITCHBOARD_ARI_PASSWORD=""
        ),
    )
    assert done.returncode == 2
    assert one_line(done) == (
        "switchboard run: SWITCHBOARD_ARI_PASSWORD is set but empty: Asterisk refuses an ARI "
        "user with no password; set it to the password of [acd] in Asterisk's ari.conf, or "
        "unset it to use the configuration's asterisk.ari_password"
    )


# --- log level, colour ---------------------------------------------------------------------


@asynccontextmanager
async def running(*args: str, environ: dict[str, str]) -> AsyncIterator[Lines]:
    """`switchboard ARGS`, its stderr read line by line; SIGTERM and the rest of its lines
    on the way out."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard", *args, cwd=ROOT, env=environ,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines = Lines(process.stderr)
    try:
        async with asyncio.timeout(TIMEOUT):
            yield lines
            process.send_signal(signal.SIGTERM)
            await lines.rest()
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def run_env(**extra: str) -> dict[str, str]:
    return env(
        SWITCHBOARD_ARI_URL=f"http://127.0.0.1:{free_port()}",
        SWITCHBOARD_ARI_USER=ARI_USER,
        SWITCHBOARD_ARI_PASSWORD=ARI_PASSWORD,
        **extra,
    )


@pytest.mark.asyncio
async def test_run_log_level_debug_shows_each_quiet_attempt() -> None:
    async with running("run", str(OFFICE), "--log-level", "debug", environ=run_env()) as lines:
        await lines.until(r"\[debug +\] ari connection failed .*attempt=2")


@pytest.mark.asyncio
async def test_run_log_level_error_shows_errors_only() -> None:
    async with running("run", str(OFFICE), "--log-level", "ERROR", environ=run_env()) as lines:
        await lines.until(r"cannot reach Asterisk at")
    said = lines.lines
    levels = {m.group(1) for line in said if (m := re.search(r" \[(\w+) *\] ", line))}
    assert levels == {"error"}, "\n".join(said)


@pytest.mark.asyncio
async def test_agi_takes_its_log_level_from_switchboard_log_level() -> None:
    environ = env(SWITCHBOARD_AGI_LISTEN="127.0.0.1:0", SWITCHBOARD_LOG_LEVEL="debug")
    async with running("agi", str(OFFICE), environ=environ) as lines:
        await lines.until(r"\[debug +\] agi\.listening")


def test_a_log_level_that_is_none_is_one_line() -> None:
    done = switchboard("agi", str(OFFICE), environ=env(SWITCHBOARD_LOG_LEVEL="verbose"))
    assert done.returncode == 2
    assert one_line(done) == (
        "switchboard agi: SWITCHBOARD_LOG_LEVEL 'verbose': use one of debug, info, warning, error"
    )


def test_demo_log_level_info_shows_the_runtime_s_log(db: str) -> None:
    done = switchboard(
        "demo", "--log-level", "info", "--speed", "200", environ=env(SWITCHBOARD_DSN=db)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"\[info +\] ari connected", done.stderr), done.stderr[-3000:]
    assert "2 calls handled over ARI" in done.stdout


def stderr_on_a_terminal(environ: dict[str, str], marker: bytes) -> bytes:
    """What `switchboard run` writes to a terminal (a pseudo-terminal) up to ``marker``."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard", "run", str(OFFICE)],
        cwd=ROOT, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    written = b""
    try:
        deadline = time.monotonic() + TIMEOUT
        while marker not in written:
            ready, _, _ = select.select([controller], [], [], deadline - time.monotonic())
            assert ready, written.decode(errors="replace")
            try:
                written += os.read(controller, 65536)
            except OSError:  # the terminal's other end closed: the process ended
                break
    finally:
        process.kill()
        process.wait()
        os.close(controller)
    assert marker in written, written.decode(errors="replace")
    return written


def test_no_color_takes_the_colour_out_of_the_terminal_log() -> None:
    marker = b"cannot reach Asterisk"
    assert b"\x1b[" in stderr_on_a_terminal(run_env(), marker)  # a terminal gets colour
    assert b"\x1b[" in stderr_on_a_terminal(run_env(NO_COLOR=""), marker)  # empty: no effect
    assert b"\x1b[" not in stderr_on_a_terminal(run_env(NO_COLOR="1"), marker)
