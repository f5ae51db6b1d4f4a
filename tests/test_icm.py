"""ICM in examples/call-centre.yaml: a returning caller goes to their manager first."""

from __future__ import annotations

import pytest

from switchboard.config.company import Company
from switchboard.engine.actions import Lookup
from switchboard.simulate import LastAgent
from tests.helpers import company_from, example, path, rings, run, step

KNOWN = "+7 916 111-22-33"  # contacts: ivanov
DIRECTORS_FRIEND = "79034445566"  # contacts: director, who is in `exceptions`
STRANGER = "79035550000"


@pytest.fixture(scope="module")
def centre() -> Company:
    return example("call-centre.yaml")


def test_known_caller_whose_manager_answers_is_connected_to_that_manager(centre: Company) -> None:
    sim = run(centre, caller=KNOWN, agents={"ivanov": "answer:4"})
    icm = step(sim, "returning")
    assert icm.details["manager"] == "ivanov"
    assert rings(sim) == [(0, "ivanov", "desk")]
    assert (sim.outcome.result, sim.outcome.agent, sim.outcome.wait) == ("connected", "ivanov", 4)
    assert "queue" not in path(sim)


def test_manager_who_does_not_answer_sends_the_call_back_into_the_scenario(centre: Company) -> None:
    sim = run(centre, caller=KNOWN, agents={"ivanov": "noanswer"})
    icm = step(sim, "returning")
    assert (icm.via, icm.exit, icm.t_end) == ("noanswer", "queue", 20)  # ring_timeout: 20
    assert sim.outcome.result == "connected"
    assert sim.outcome.department == "support"


def test_manager_who_is_busy_also_returns_to_the_scenario(centre: Company) -> None:
    sim = run(centre, caller=KNOWN, agents={"ivanov": "busy"})
    assert step(sim, "returning").via == "noanswer"
    assert step(sim, "queue").t == 0


def test_manager_in_exceptions_is_skipped_for_the_next_source(centre: Company) -> None:
    sim = run(centre, caller=DIRECTORS_FRIEND, last_agent=_last("petrov"))
    icm = step(sim, "returning")
    assert icm.details["sources"][0] == {"source": "contacts", "result": "director (exception)"}
    assert icm.details["sources"][1] == {"source": "last_agent", "result": "petrov"}
    assert sim.outcome.agent == "petrov"
    assert all(agent != "director" for _, agent, _ in rings(sim))


def test_last_agent_older_than_the_window_is_not_used(centre: Company) -> None:
    sim = run(centre, caller=STRANGER, last_agent=_last("petrov", days_ago=45))
    assert step(sim, "returning").via == "notfound"


def test_crm_answer_by_extension_finds_the_employee(centre: Company) -> None:
    sim = run(centre, caller=STRANGER, crm="102")
    icm = step(sim, "returning")
    assert icm.details["sources"][-1] == {"source": "http", "result": "petrov"}
    assert sim.outcome.agent == "petrov"
    crm = next(a for _, a in sim.actions if isinstance(a, Lookup) and a.source == "http")
    assert crm.url == f"http://127.0.0.1:8099/crm/manager?phone={STRANGER}"
    assert crm.path == "manager.id"


def test_crm_that_times_out_holds_the_caller_no_longer_than_its_timeout(centre: Company) -> None:
    sim = run(centre, caller=STRANGER, crm="timeout")
    icm = step(sim, "returning")
    assert icm.details["sources"][-1] == {"source": "http", "result": "timeout"}
    assert (icm.via, icm.t_end) == ("notfound", 1.5)


def test_nobody_found_takes_notfound(centre: Company) -> None:
    sim = run(centre, caller=STRANGER)
    icm = step(sim, "returning")
    assert [s["source"] for s in icm.details["sources"]] == ["contacts", "last_agent", "http"]
    assert (icm.via, icm.exit) == ("notfound", "queue")


def test_anonymous_caller_is_not_looked_up(centre: Company) -> None:
    sim = run(centre, caller="anonymous")
    assert step(sim, "returning").via == "notfound"
    assert not [a for _, a in sim.actions if isinstance(a, Lookup)]


ICM_DEFAULT = """
employees:
  - {id: boss, extension: "100", mobile: "79160000001"}
  - {id: duty, extension: "199"}
contacts: {"79160000002": boss}
scenarios:
  main:
    start: find
    nodes:
      find: {type: icm, sources: [contacts], to_mobile: true, default: "199",
             noanswer: bye, notfound: bye}
      bye: {type: hangup}
default_scenario: main
"""


def test_to_mobile_rings_desk_and_mobile_together() -> None:
    sim = run(company_from(ICM_DEFAULT), caller="79160000002", agents={"boss": "noanswer"})
    assert rings(sim) == [(0, "boss", "desk"), (0, "boss", "mobile")]


def test_default_number_is_rung_when_no_source_knows_the_caller() -> None:
    sim = run(company_from(ICM_DEFAULT), caller="79160000003")
    assert step(sim, "find").details["default"] == "199"
    assert sim.outcome.agent == "duty"


def _last(employee: str, days_ago: float = 2.0) -> LastAgent:
    return LastAgent(employee, days_ago)


def test_crm_url_values_are_percent_encoded() -> None:
    company = company_from(
        ICM_DEFAULT.replace(
            "sources: [contacts]",
            'sources: [{type: http, url: "https://crm/find?name={caller_name}&n={caller}"}]',
        )
    )
    sim = run(company, caller="79160000003", caller_name="A&B /x?=<y>")
    crm = next(a for _, a in sim.actions if isinstance(a, Lookup))
    assert crm.url == "https://crm/find?name=A%26B%20%2Fx%3F%3D%3Cy%3E&n=79160000003"
