"""What a CRM may answer an ICM `http` source is bounded (issue 10, finding 7).

The CRM here is a real aiohttp server on loopback that misbehaves on purpose: a body
that never ends, an answer far bigger than any employee id needs, a redirect to
another host, JSON nested thousands deep.  Each call below runs on the ARI runtime
against the Asterisk simulator; whatever the CRM does, its answer is refused in one
log line and the call is routed by the next source (the contacts map: smirnov),
never by what the misbehaving CRM said (petrov).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from structlog.testing import capture_logs

from switchboard.calls import CallRecord
from switchboard.config.load import load_text
from switchboard.demo import AriStack
from tests.helpers import company_from

CALLER = "79035550000"
PETROV = json.dumps({"manager": {"id": "petrov"}}).encode()
ENDLESS_CAP = 16 * 2**20  # what the endless body sends before it only holds the line


def config(url: str, extra: str = "", before: str = "") -> str:
    """Two employees; the CRM at ``url`` first, then the contacts map (smirnov)."""
    return f"""
employees:
  - {{id: petrov, name: Petrov, extension: "101"}}
  - {{id: smirnov, name: Smirnov, extension: "102"}}
contacts:
  "{CALLER}": smirnov
default_scenario: main
scenarios:
  main:
    start: {"pick" if before else "find"}
    nodes:{before}
      find:
        type: icm
        sources:
          - {{type: http, url: "{url}", path: manager.id, timeout: 100{extra}}}
          - contacts
        noanswer: bye
        notfound: bye
      bye:
        type: hangup
"""


@dataclass
class Crm:
    """A CRM that misbehaves on purpose; ``base`` is its URL, ``asked`` its requests."""

    base: str = ""
    asked: list[str] = field(default_factory=list)
    endless_stopped: asyncio.Event = field(default_factory=asyncio.Event)


async def _serve(app: web.Application, host: str) -> tuple[web.AppRunner, int]:
    # handler_cancellation: a handler holding a line learns when its client has gone
    runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest_asyncio.fixture
async def crm() -> AsyncIterator[tuple[Crm, Crm]]:
    """The misbehaving CRM on 127.0.0.1, and an honest one on 127.0.0.2 (another host)."""
    bad, other = Crm(), Crm()

    def manager(crm: Crm) -> Any:
        async def answer(request: web.Request) -> web.Response:
            crm.asked.append(request.path_qs)
            return web.Response(body=PETROV, content_type="application/json")

        return answer

    async def endless(request: web.Request) -> web.StreamResponse:
        bad.asked.append(request.path_qs)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)  # chunked: no length, the body never ends
        try:
            sent = 0
            while sent < ENDLESS_CAP:
                await response.write(b" " * 65536)
                sent += 65536
            await asyncio.Event().wait()  # then it holds the line, sending nothing
        finally:  # the client went away: a write failed, or the handler was cancelled
            bad.endless_stopped.set()
        return response

    async def big(request: web.Request) -> web.Response:
        bad.asked.append(request.path_qs)
        padded = {"manager": {"id": "petrov"}, "notes": "x" * 2**20}  # 1 MiB, declared
        return web.json_response(padded)

    async def moved(request: web.Request) -> web.Response:
        bad.asked.append(request.path_qs)
        raise web.HTTPFound(request.query["to"])

    async def deep(request: web.Request) -> web.Response:
        bad.asked.append(request.path_qs)
        depth = int(request.query["depth"])
        nested = "[" * depth + "]" * depth
        return web.Response(text=f'{{"manager": {{"id": "petrov"}}, "x": {nested}}}')

    bad_app, other_app = web.Application(), web.Application()
    bad_app.router.add_get("/manager", manager(bad))
    bad_app.router.add_get("/endless", endless)
    bad_app.router.add_get("/big", big)
    bad_app.router.add_get("/moved", moved)
    bad_app.router.add_get("/deep", deep)
    other_app.router.add_get("/manager", manager(other))
    bad_runner, bad_port = await _serve(bad_app, "127.0.0.1")
    other_runner, other_port = await _serve(other_app, "127.0.0.2")
    bad.base, other.base = f"http://127.0.0.1:{bad_port}", f"http://127.0.0.2:{other_port}"
    yield bad, other
    await bad_runner.cleanup()
    await other_runner.cleanup()


async def call(text: str) -> tuple[CallRecord, list[dict[str, Any]]]:
    """One call from CALLER on the live runtime: its record and the lookup log lines."""
    async with AriStack(company_from(text)) as stack:
        stack.script({})
        with capture_logs() as logs:
            record = await stack.call(caller=CALLER)
    return record, [e for e in logs if "lookup" in e["event"]]


def sources(record: CallRecord) -> list[dict[str, Any]]:
    icm = next(step for step in record.steps if step.node == "find")
    found: list[dict[str, Any]] = icm.details["sources"]
    return found


REFUSED_THEN_CONTACTS = [
    {"source": "http", "result": "none"},  # refused at once: the engine's timer never fired
    {"source": "contacts", "result": "smirnov"},
]


def one_warning(lines: list[dict[str, Any]], says: str) -> dict[str, Any]:
    """The single `lookup failed` line, with its cause and no traceback."""
    assert [e["event"] for e in lines] == ["lookup failed"]
    line = lines[0]
    assert line["log_level"] == "warning"
    assert line["source"] == "http"
    assert line["host"] == "127.0.0.1"
    assert says in line["error"]
    assert "exc_info" not in line
    assert "exception" not in line
    return line


@pytest.mark.asyncio
async def test_an_honest_crm_still_routes_the_caller(crm: tuple[Crm, Crm]) -> None:
    bad, _ = crm
    record, lines = await call(config(f"{bad.base}/manager?phone={{caller}}"))
    assert sources(record) == [{"source": "http", "result": "petrov"}]
    assert record.outcome.agent == "petrov"
    assert lines == []


@pytest.mark.asyncio
async def test_a_body_that_never_ends_is_cut_at_max_body_and_the_next_source_routes(
    crm: tuple[Crm, Crm],
) -> None:
    bad, _ = crm
    record, lines = await call(config(f"{bad.base}/endless?phone={{caller}}"))
    assert sources(record) == REFUSED_THEN_CONTACTS
    assert record.outcome.agent == "smirnov"
    one_warning(lines, "max_body (65536 bytes)")
    # the client hung up on the endless body: the CRM's handler saw it go
    async with asyncio.timeout(5):
        await bad.endless_stopped.wait()


@pytest.mark.asyncio
async def test_an_answer_declared_bigger_than_max_body_is_not_read(crm: tuple[Crm, Crm]) -> None:
    bad, _ = crm
    record, lines = await call(config(f"{bad.base}/big?phone={{caller}}"))
    assert sources(record) == REFUSED_THEN_CONTACTS  # although it names petrov
    assert record.outcome.agent == "smirnov"
    one_warning(lines, "answer of 1048618 bytes, more than max_body (65536)")


@pytest.mark.asyncio
async def test_a_redirect_on_the_same_host_is_followed(crm: tuple[Crm, Crm]) -> None:
    bad, _ = crm
    url = f"{bad.base}/moved?to=/manager%3Fphone%3D{{caller}}"
    record, lines = await call(config(url))
    assert sources(record) == [{"source": "http", "result": "petrov"}]
    assert [asked.partition("?")[0] for asked in bad.asked] == ["/moved", "/manager"]
    assert lines == []


@pytest.mark.asyncio
async def test_a_redirect_to_another_host_is_not_followed(crm: tuple[Crm, Crm]) -> None:
    bad, other = crm
    record, lines = await call(config(f"{bad.base}/moved?to={other.base}/manager"))
    assert sources(record) == REFUSED_THEN_CONTACTS
    assert record.outcome.agent == "smirnov"
    assert other.asked == []  # never asked: it is not the CRM the config names
    one_warning(lines, "redirect to another host not followed: 127.0.0.2")


@pytest.mark.asyncio
async def test_a_host_off_the_allow_list_is_never_asked(crm: tuple[Crm, Crm]) -> None:
    bad, _ = crm
    port = bad.base.rsplit(":", 1)[1]
    # the host comes from a variable: `check` cannot know it, the runtime refuses it
    pick = """
      pick:
        type: assign
        var: crm
        value: 127.0.0.1
        next: find"""
    url = f"http://{{var.crm}}:{port}/manager?phone={{caller}}"
    text = config(url, ", allowed_hosts: [crm.example.com]", before=pick)
    record, lines = await call(text)
    assert sources(record) == REFUSED_THEN_CONTACTS
    assert bad.asked == []
    one_warning(lines, "host 127.0.0.1 is not in allowed_hosts")


@pytest.mark.asyncio
async def test_json_nested_thousands_deep_is_one_line_and_the_next_source(
    crm: tuple[Crm, Crm],
) -> None:
    bad, _ = crm
    record, lines = await call(config(f"{bad.base}/deep?depth=30000&phone={{caller}}"))
    assert sources(record) == REFUSED_THEN_CONTACTS
    assert record.outcome.agent == "smirnov"
    one_warning(lines, "unreadable JSON: depth limit exceeded")


@pytest.mark.asyncio
async def test_json_nested_deeper_than_max_depth_is_refused_though_it_names_somebody(
    crm: tuple[Crm, Crm],
) -> None:
    bad, _ = crm
    record, lines = await call(config(f"{bad.base}/deep?depth=40&phone={{caller}}"))
    assert sources(record) == REFUSED_THEN_CONTACTS
    one_warning(lines, "JSON nested deeper than max_depth (32)")


def problems(text: str) -> list[str]:
    result = load_text(text, "company.yaml")
    assert result.company is None
    return [p.format("company.yaml") for p in result.errors]


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_check_names_the_line_of_a_host_the_allow_list_does_not_hold() -> None:
    text = config("https://127.0.0.1/manager?phone={caller}", ", allowed_hosts: [crm.example]")
    where = line_of(text, "type: http")
    assert problems(text) == [
        f"company.yaml:{where}: node main.find.sources[0].url: "
        "host '127.0.0.1' is not in allowed_hosts"
    ]


def test_check_names_the_line_of_every_bad_bound() -> None:
    text = config(
        "http://crm.example/m?n={caller}", ", max_body: 0, max_depth: 0, max_redirects: 11"
    )
    where = line_of(text, "type: http")
    found = problems(text)
    assert found == [
        f"company.yaml:{where}: node main.find.sources[0].{key}: {said}"
        for key, said in [
            ("max_body", "input should be greater than or equal to 1, got 0"),
            ("max_depth", "input should be greater than or equal to 1, got 0"),
            ("max_redirects", "input should be less than or equal to 10, got 11"),
        ]
    ]


def test_check_names_the_line_of_a_url_that_is_no_http_url_and_of_a_host_that_is_no_host() -> None:
    allowed = ", allowed_hosts: [crm.example, 'https://crm.example:8443/x']"
    text = config("crm.example/manager?phone={caller}", allowed)
    where = line_of(text, "type: http")
    assert sorted(problems(text)) == [
        f"company.yaml:{where}: node main.find.sources[0].allowed_hosts[1]: "
        "'https://crm.example:8443/x' is not a host name or address "
        "(write the host alone, e.g. crm.example.com: no scheme, port or path)",
        f"company.yaml:{where}: node main.find.sources[0].url: "
        "use http:// or https://, e.g. https://crm/find?n={caller}",
    ]
