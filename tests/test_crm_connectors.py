"""CRM connectors for ICM (issue 15): the `http` source's method, headers, JSON body,
tokens from the environment, array paths and the CRM's own user ids.

The CRM is a real aiohttp server on loopback that checks what it is sent, like
amoCRM or Bitrix24 would; each call runs on the ARI runtime against the Asterisk
simulator.
"""

from __future__ import annotations

import json
import re
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
from tests.helpers import ROOT, company_from
from tests.test_crm_bounds import _serve

CALLER = "79035550000"
TOKEN = "s3cret-token-7"  # noqa: S105 - a test's token, in the test's environment
# a caller name a CRM request must carry as it is: quotes, braces, a variable's name
NAME = 'Ivan "the {env.CRM_TOKEN}" Ivanov\r\nX-Evil: 1'


@dataclass
class Crm:
    base: str = ""
    asked: list[dict[str, Any]] = field(default_factory=list)


@pytest_asyncio.fixture
async def crm() -> AsyncIterator[Crm]:
    """Bitrix24-like (POST, JSON in, ``result`` array out) and amoCRM-like (GET, a
    bearer token, ``204`` for nobody) endpoints."""
    crm = Crm()

    async def bitrix(request: web.Request) -> web.Response:
        body = await request.json()
        crm.asked.append({"path": request.path, "headers": dict(request.headers), "body": body})
        if body["filter"]["PHONE"] != f"+{CALLER}":
            return web.json_response({"result": [], "total": 0})
        return web.json_response({"result": [{"ID": "55", "ASSIGNED_BY_ID": "7"}], "total": 1})

    async def amo(request: web.Request) -> web.Response:
        crm.asked.append({"path": request.path_qs, "headers": dict(request.headers)})
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.Response(status=401)
        if request.query.get("query") != CALLER:
            return web.Response(status=204)
        contacts = [{"id": 1, "responsible_user_id": 6587432}, {"id": 2}]
        return web.json_response({"_embedded": {"contacts": contacts}})

    app = web.Application()
    app.router.add_post("/rest/1/{code}/crm.contact.list.json", bitrix)
    app.router.add_get("/api/v4/contacts", amo)
    runner, port = await _serve(app, "127.0.0.1")
    crm.base = f"http://127.0.0.1:{port}"
    yield crm
    await runner.cleanup()


def config(source: str) -> str:
    """petrov and smirnov; the CRM ``source`` first, then the contacts map (smirnov)."""
    return f"""
employees:
  - {{id: petrov, name: Petrov, extension: "101"}}
  - {{id: smirnov, name: Smirnov, extension: "102"}}
contacts:
  "{CALLER}": smirnov
default_scenario: main
scenarios:
  main:
    start: find
    nodes:
      find:
        type: icm
        sources:
          - {source}
          - contacts
        noanswer: bye
        notfound: bye
      bye:
        type: hangup
"""


async def call(text: str, caller: str = CALLER) -> tuple[CallRecord, list[dict[str, Any]]]:
    async with AriStack(company_from(text)) as stack:
        stack.script({})
        with capture_logs() as logs:
            record = await stack.call(caller=caller, caller_name=NAME)
    return record, [e for e in logs if "lookup" in e["event"]]


def sources(record: CallRecord) -> list[dict[str, Any]]:
    icm = next(step for step in record.steps if step.node == "find")
    found: list[dict[str, Any]] = icm.details["sources"]
    return found


BITRIX = (
    '{{type: http, method: POST, timeout: 100, url: "{base}/rest/1/{{env.BITRIX_CODE}}/'
    'crm.contact.list.json", headers: {{X-Caller: "{{caller_name}}"}}, '
    'body: \'{{"filter": {{"PHONE": "+{{caller}}"}}, "name": "{{caller_name}}"}}\', '
    'path: result.0.ASSIGNED_BY_ID, map: {{"7": petrov}}}}'
)


@pytest.mark.asyncio
async def test_a_post_with_a_json_body_and_a_token_from_the_environment_finds_the_manager(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BITRIX_CODE", "hook42")
    monkeypatch.setenv("CRM_TOKEN", TOKEN)
    record, lines = await call(config(BITRIX.format(base=crm.base)))
    assert sources(record)[0] == {"source": "http", "result": "petrov"}  # 7 -> petrov
    assert lines == []
    (asked,) = crm.asked
    assert asked["path"] == "/rest/1/hook42/crm.contact.list.json"  # the code, filled in
    assert asked["headers"]["Content-Type"] == "application/json"
    # the caller's name reached the CRM as it was: one JSON string, one header value
    assert asked["body"] == {"filter": {"PHONE": f"+{CALLER}"}, "name": NAME}
    assert asked["headers"]["X-Caller"] == NAME.replace("\r", " ").replace("\n", " ")
    assert "X-Evil" not in asked["headers"]
    # no caller can name a variable; and the secrets are nowhere in the record
    assert TOKEN not in json.dumps(asked)
    kept = json.dumps(record.as_json(), default=str)
    assert "hook42" not in kept
    assert TOKEN not in kept


AMO = (
    '{{type: http, timeout: 100, url: "{base}/api/v4/contacts?query={{caller}}&limit=1", '
    'headers: {{Authorization: "Bearer {{env.AMOCRM_TOKEN}}"}}, '
    'path: _embedded.contacts.0.responsible_user_id, map: {{"6587432": petrov}}}}'
)


@pytest.mark.asyncio
async def test_a_get_with_a_bearer_token_reads_the_first_item_of_an_array(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMOCRM_TOKEN", TOKEN)
    record, lines = await call(config(AMO.format(base=crm.base)))
    assert sources(record)[0] == {"source": "http", "result": "petrov"}
    assert lines == []
    assert crm.asked[0]["path"] == f"/api/v4/contacts?query={CALLER}&limit=1"


@pytest.mark.asyncio
async def test_no_content_means_nobody_and_the_next_source_routes(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMOCRM_TOKEN", TOKEN)
    record, lines = await call(config(AMO.format(base=crm.base)), caller="79035559999")
    assert sources(record)[0] == {"source": "http", "result": "none"}  # 204: quietly nobody
    assert lines == []


@pytest.mark.asyncio
async def test_a_token_the_environment_lacks_is_one_warning_naming_it_and_nothing_is_asked(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AMOCRM_TOKEN", raising=False)
    record, lines = await call(config(AMO.format(base=crm.base)))
    assert sources(record)[:2] == [
        {"source": "http", "result": "none"},
        {"source": "contacts", "result": "smirnov"},
    ]
    (line,) = lines
    assert (line["event"], line["log_level"]) == ("lookup failed", "warning")
    assert line["error"].endswith("environment variable AMOCRM_TOKEN is not set")
    assert crm.asked == []


def _problems(source: str) -> list[str]:
    return [p.message for p in load_text(config(source), "crm.yaml").problems]


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ('{type: http, url: "https://crm/x", body: "{}"}', "a body is sent with method: POST"),
        (
            '{type: http, method: POST, url: "https://crm/x", body: \'{"n": {caller}}\'}',
            "not JSON once filled in",
        ),
        ('{type: http, url: "https://crm/x", headers: {"Bad Name": x}}', "not an HTTP header"),
        ('{type: http, url: "https://crm/x", headers: {Host: x}}', "set by Switchboard"),
        ('{type: http, url: "https://crm/x", map: {"7": nobody}}', "unknown employee 'nobody'"),
        ('{type: http, url: "https://crm/x?k={env.1X}"}', "unknown placeholder {env.1X}"),
    ],
)
def test_check_names_what_is_wrong_with_a_crm_request(source: str, says: str) -> None:
    problems = _problems(source)
    assert any(says in p for p in problems), problems


def test_an_environment_variable_is_read_only_in_a_crm_request() -> None:
    text = config('{type: http, url: "https://crm/x"}').replace(
        "      bye:\n        type: hangup\n",
        '      bye:\n        type: hangup\n        prompt: "number:{env.CRM_TOKEN}"\n',
    )
    problems = [p.message for p in load_text(text, "crm.yaml").problems]
    assert any("read only in an http source" in p for p in problems), problems


def test_every_recipe_in_the_crm_page_passes_check() -> None:
    page = (ROOT / "docs" / "crm.md").read_text()
    recipes = [
        block
        for block in re.findall(r"```yaml\n(.*?)```", page, re.S)
        if block.startswith("- type: http")
    ]
    assert len(recipes) == 4  # amoCRM, Bitrix24, Megaplan, your own
    for recipe in recipes:
        indented = "\n".join("          " + line for line in recipe.splitlines())
        text = (
            config("contacts")
            .replace("          - contacts\n", indented + "\n          - contacts\n", 1)
            .replace("  - {id: smirnov,", "  - {id: ivanov, extension: '103'}\n  - {id: smirnov,")
        )
        problems = load_text(text, "crm.yaml").problems
        assert problems == [], (recipe, problems)
