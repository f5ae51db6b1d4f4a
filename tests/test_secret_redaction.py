"""No password, token or secret of a DSN or URL reaches a log line or a message
(issue 10, finding 9).

`redact` is checked over every form a secret takes in text (a URL's user info, a
query parameter, a libpq keyword/value string, each inside a longer message); then
`switchboard run` is started with a DSN that carries a password, against a database
that is not there, and what it writes is read: the host is named, the password never.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from switchboard.logs import configure_logging
from switchboard.redaction import redact
from tests.helpers import ROOT

# Every secret starts with Q, and nothing else in the generated text has an upper-case
# letter: a Q in the output is a secret (or a piece of one) that got through.
MARK = "Q"

hosts = st.from_regex(r"[a-z][a-z0-9-]{0,8}(\.[a-z][a-z0-9-]{0,8}){0,2}", fullmatch=True)
users = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
words = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
secrets = st.text(printable, max_size=16).map(lambda s: MARK + s)
# names of parameters that hold a secret, as drivers and services spell them
secret_names = st.builds(
    lambda before, word, after: before + word + after,
    st.sampled_from(["", "ssl", "client_", "access_", "x-"]),
    st.sampled_from(["password", "passwd", "secret", "token", "api_key", "apikey", "pwd"]),
    st.sampled_from(["", "_1", "file", "-value"]),
)


def in_url_user_info(secret: str, encoded: bool) -> str:
    """A password as written after ``user:``: percent-encoded, or bare as people type it
    (blanks and quotes cannot be bare: they end a URL in running text)."""
    if encoded:
        return quote(secret, safe="")
    return "".join(c for c in secret if c not in '"<>`') or MARK


@st.composite
def url_with_password(draw: st.DrawFn) -> tuple[str, str]:
    """``scheme://user:SECRET@host[:port]/path``: a PostgreSQL DSN, a CRM or ARI URL."""
    scheme = draw(st.sampled_from(["postgresql", "postgres", "http", "https", "ws"]))
    host = draw(hosts)
    password = in_url_user_info(draw(secrets), draw(st.booleans()))
    path = draw(st.sampled_from(["", "/", "/calls", "/crm/manager?phone=7916"]))
    return f"{scheme}://{draw(users)}:{password}@{host}{draw(ports)}{path}", host


@st.composite
def url_with_secret_parameters(draw: st.DrawFn) -> tuple[str, str]:
    """``scheme://host/db?sslmode=require&password=SECRET&...``: some parameters secret."""
    scheme = draw(st.sampled_from(["postgresql", "postgres", "https"]))
    host = draw(hosts)
    plain = [f"{draw(words)}={draw(words)}" for _ in range(draw(st.integers(0, 2)))]
    secret = [
        f"{draw(secret_names)}={written}"
        for written in draw(
            st.lists(
                st.one_of(secrets.map(lambda s: quote(s, safe="")), secrets.map(_bare_query)),
                min_size=1,
                max_size=3,
            )
        )
    ]
    params = draw(st.permutations(plain + secret))
    user = draw(st.one_of(st.just(""), users.map(lambda u: u + "@")))
    return f"{scheme}://{user}{host}{draw(ports)}/{draw(words)}?{'&'.join(params)}", host


def _bare_query(secret: str) -> str:
    """A secret written into a query unencoded, but for what ends a parameter."""
    return "".join(c for c in secret if c not in '&#"') or MARK


def libpq_value(secret: str, quoted: bool) -> str:
    """``secret`` as libpq reads a keyword's value: quoted, or bare with escapes."""
    escaped = secret.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'" if quoted else escaped.replace(" ", "\\ ")


@st.composite
def libpq_string(draw: st.DrawFn) -> tuple[str, str]:
    """``host=H port=5432 user=U password=SECRET dbname=D``, in any order."""
    host = draw(hosts)
    value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16)
    pairs = [f"host={host}", f"user={draw(users)}", f"dbname={draw(words)}", "port=5432"]
    for _ in range(draw(st.integers(1, 2))):
        equals = draw(st.sampled_from(["=", " = ", "= "]))
        pairs.append(
            f"{draw(secret_names)}{equals}{libpq_value(MARK + draw(value), draw(st.booleans()))}"
        )
    return " ".join(draw(st.permutations(pairs))), host


# how a DSN or URL shows up in a message: alone, quoted in an error, in a repr
contexts = st.sampled_from(
    [
        "{}",
        "cannot connect to {}: [Errno 111] Connection refused",
        "ClientConnectorError: url='{}'",
        'invalid DSN "{}"',
        "(dsn={}, timeout=2)",
    ]
)


def assert_hidden(text: str, host: str) -> None:
    shown = redact(text)
    assert MARK not in shown, shown
    assert host in shown
    assert "***" in shown


@given(url_with_password(), contexts)
def test_a_password_in_a_url_is_hidden_and_the_host_stays(
    case: tuple[str, str], context: str
) -> None:
    url, host = case
    assert_hidden(context.format(url), host)


@given(url_with_secret_parameters(), contexts)
def test_a_password_token_or_secret_parameter_is_hidden_and_the_host_stays(
    case: tuple[str, str], context: str
) -> None:
    url, host = case
    assert_hidden(context.format(url), host)


@given(libpq_string(), contexts)
def test_a_password_in_a_libpq_keyword_string_is_hidden_and_the_host_stays(
    case: tuple[str, str], context: str
) -> None:
    dsn, host = case
    assert_hidden(context.format(dsn), host)


@given(st.text(max_size=60))
def test_text_with_no_secret_form_is_left_as_it_is(text: str) -> None:
    if "=" not in text and "@" not in text:
        assert redact(text) is text
    assert redact(redact(text)) == redact(text)


def test_what_stays_readable() -> None:
    assert redact("postgresql://switchboard@db.local:5432/calls?sslmode=require") == (
        "postgresql://switchboard@db.local:5432/calls?sslmode=require"
    )
    assert redact("http://[::1]:8088/ari and http://crm:8080/a@b") == (
        "http://[::1]:8088/ari and http://crm:8080/a@b"
    )
    assert redact("host=db password='a b' user=sb") == "host=db password=*** user=sb"


@pytest.mark.parametrize("json_output", [True, False])
def test_no_log_line_carries_a_password_whoever_logged_it(
    json_output: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json_output=json_output)
    try:
        log = structlog.get_logger("anywhere")
        try:
            raise ConnectionError("no route to postgresql://sb:S3cretPw@db.local/calls")
        except ConnectionError:  # a driver's error quoting the DSN, and its traceback
            log.exception("database down", dsn="host=db.local password=S3cretPw sslpassword=K3y")
    finally:
        structlog.reset_defaults()
    written = capfd.readouterr().err
    assert "S3cretPw" not in written
    assert "K3y" not in written
    assert "postgresql://sb:***@db.local/calls" in written
    assert "host=db.local password=*** sslpassword=***" in written


def closed_port() -> int:
    """A port nothing listens on (bound, then closed: the system gives it out rarely)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def run_until_database_warnings(env: dict[str, str], config: Path) -> list[dict[str, object]]:
    """`switchboard run --json-logs` until it has said twice that the database is away
    (at start, and the record writer); then SIGTERM, and every line it wrote."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", "run", "--json-logs", str(config),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=config.parent,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while sum(b"database unreachable" in line for line in lines) < 2:
                line = await process.stderr.readline()
                assert line, b"".join(lines).decode()  # it ended before saying so
                lines.append(line)
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), 60)
    lines.extend(rest.splitlines())
    return [orjson.loads(line) for line in lines if line.strip()]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://switchboard:S3cretPw@localhost:{port}/calls",
        "postgres://switchboard@localhost:{port}/calls?password=S3cretPw&sslpassword=K3yS3cret",
    ],
)
async def test_switchboard_run_names_the_database_host_but_never_its_password(
    dsn: str, tmp_path: Path
) -> None:
    config = tmp_path / "office.yaml"
    config.write_text((ROOT / "examples" / "office.yaml").read_text())
    env = {
        **os.environ,
        "SWITCHBOARD_DSN": dsn.format(port=closed_port()),
        "SWITCHBOARD_ARI_URL": f"http://127.0.0.1:{closed_port()}",
        "SWITCHBOARD_ARI_PASSWORD": "ari-test",  # `run` starts with none no more (issue 13)
        "SWITCHBOARD_UVLOOP": "0",
    }
    lines = await run_until_database_warnings(env, config)
    text = b"\n".join(orjson.dumps(line) for line in lines).decode()
    assert "S3cretPw" not in text
    assert "K3yS3cret" not in text
    down = [line for line in lines if "database unreachable" in str(line["event"])]
    assert len(down) == 2
    for line in down:
        assert "localhost" in str(line["database"])
