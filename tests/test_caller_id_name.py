"""The caller-ID name an employee's phone shows (issue 15): a department's or node's
``caller_id_name`` template, set on the leg Switchboard rings.

Over ARI the leg is created with its connected line set (``CONNECTEDLINE(name,i)``,
what a phone shows of the party calling it) and dialled without the caller, whose
caller ID the dial would otherwise copy over it (resource_channels.c).  Over FastAGI
Dial runs the shipped pre-dial handler on each callee.  Read from the simulated
Asterisk: each leg's connected line, the requests, the Dial's options.
"""

from __future__ import annotations

import datetime as dt

import pytest

from switchboard.demo import AriStack
from switchboard.simulate import AgentBehaviour
from tests.agi_stack import AgiStack
from tests.helpers import company_from

CALLER = "79035550000"
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
OFFICE = """
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "101"}
  - {id: petrov, name: Pyotr Petrov, extension: "102"}
departments:
  - {id: sales, members: [ivanov], caller_id_name: "[Sales] {caller_name}"}
  - {id: support, members: [petrov]}
numbers:
  - {number: "74951110001", scenario: sales}
  - {number: "74951110002", scenario: support}
scenarios:
  sales:
    start: ring
    nodes:
      ring: {type: dial, target: sales, ring_timeout: 20, noanswer: bye}
      bye: {type: hangup}
  support:
    start: ring
    nodes:
      ring: {type: dial, target: support, ring_timeout: 20, noanswer: bye}
      bye: {type: hangup}
"""


@pytest.mark.asyncio
async def test_the_departments_name_is_what_the_employees_phone_shows_over_ari() -> None:
    async with AriStack(company_from(OFFICE)) as stack:
        stack.script(
            {"ivanov": AgentBehaviour("answer", 1.0), "petrov": AgentBehaviour("answer", 1.0)}
        )
        for called in ("74951110001", "74951110002"):
            record = await stack.call(caller=CALLER, called=called, caller_name="Anna")
            assert record.outcome.result == "connected"
        legs = {c.endpoint: c for c in stack.sim.pbx.channels.values() if c.created_by_ari}
        dials = {
            r.path.split("/")[3]: dict(r.query)
            for r in stack.sim.requests
            if r.method == "POST" and r.path.endswith("/dial")
        }
    sales, support = legs["PJSIP/101"], legs["PJSIP/102"]
    assert (sales.connected.name, sales.connected.number) == ("[Sales] Anna", CALLER)
    assert "caller" not in dials[sales.id]  # the caller's ID would be copied over it
    assert (support.connected.name, support.connected.number) == ("Anna", CALLER)
    assert "caller" in dials[support.id]  # no name of its own: the caller's, as ever


@pytest.mark.asyncio
async def test_over_fastagi_dial_runs_the_pre_dial_handler_with_the_name() -> None:
    company = company_from(OFFICE)
    agents = {"ivanov": AgentBehaviour("answer", 1.0), "petrov": AgentBehaviour("answer", 1.0)}
    async with AgiStack(company, WHEN, agents, talk=10.0) as stack:
        sales, support = [
            await stack.call(caller=CALLER, dnid=called, extension=called, caller_name="Anna")
            for called in ("74951110001", "74951110002")
        ]
    (dial,) = sales.dials
    assert dial.options.endswith("b(switchboard-caller-id^s^1)")
    # set for the callees to inherit (one "_"), before the Dial
    commands = [command for _, command in sales.commands]
    set_name = commands.index('SET VARIABLE _SWITCHBOARD_CALLER_ID_NAME "[Sales] Anna"')
    assert set_name < commands.index("EXEC Dial PJSIP/101,20,gb(switchboard-caller-id^s^1)")
    (plain,) = support.dials
    assert "b(" not in plain.options
    assert "SWITCHBOARD_CALLER_ID_NAME" not in support.variables
