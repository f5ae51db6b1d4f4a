"""`switchboard check CONFIG`: every example passes, every broken variant is named at its line.

Each broken variant is an example file with a small text edit, the kind of
mistake a person makes by hand.  The line a problem must be reported at is
found in the variant's own text, never written down as a number, so the tests
keep working when the examples change around the edited line.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from switchboard.config.model import NODE_TYPES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
VALID_FILES = (
    "examples/office.yaml",
    "examples/multi-number.yaml",
    "examples/call-centre.yaml",
    "examples/agents.yaml",
    "tests/fixtures/design.yaml",
)


def check(*paths: Path | str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run the real command, as a user would, from the repository's top folder."""
    return subprocess.run(
        [sys.executable, "-m", "switchboard", "check", *options, *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def line_number(text: str, marker: str) -> int:
    """The 1-based line of the only line of ``text`` that contains ``marker``."""
    found = [i for i, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert len(found) == 1, f"{marker!r} is on lines {found}, expected exactly one"
    return found[0]


def edited(example: str, edits: tuple[tuple[str, str], ...]) -> str:
    """The example's text with each ``old`` (found exactly once) replaced by ``new``."""
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {example}"
        text = text.replace(old, new)
    return text


def lines_at(output: str, filename: Path, line: int) -> list[str]:
    prefix = f"{filename}:{line}:"
    return [row for row in output.splitlines() if row.startswith(prefix)]


@pytest.mark.parametrize("config", VALID_FILES)
def test_every_example_passes_check_and_says_ok(config: str) -> None:
    result = check(config)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "ok"
    assert all(": warning: " in row for row in lines[:-1]), result.stdout
    assert result.stderr == ""


def test_several_valid_files_in_one_call_say_ok_once() -> None:
    result = check(*VALID_FILES)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == ["ok"]


@dataclass(frozen=True)
class Broken:
    """A broken variant: the edits, the text on the line to blame, what the message says."""

    example: str
    edits: tuple[tuple[str, str], ...]
    blamed: str  # text found on exactly one line of the variant: the problem's line
    says: tuple[str, ...]


BROKEN = {
    "an unknown key in an employee is named": Broken(
        "office.yaml",
        (("    skills: [sales]\n", "    skils: [sales]\n"),),
        "    skils: [sales]",
        ("unknown key 'skils'", "employees[0].skils"),
    ),
    "a word where seconds are expected is a wrong type": Broken(
        "office.yaml",
        (("        wait: 5\n", "        wait: soon\n"),),
        "        wait: soon",
        ("node office.menu.wait", "valid number", "'soon'"),
    ),
    "an unknown employee among department members is named": Broken(
        "office.yaml",
        (("members: [ivanov, petrov]", "members: [ivanov, petrof]"),),
        "members: [ivanov, petrof]",
        ("unknown employee 'petrof'",),
    ),
    "a strategy app_queue spells differently is named with the ones there are": Broken(
        "office.yaml",
        (("members: [ivanov, petrov]", "members: [ivanov, petrov]\n    strategy: leastrecent"),),
        "    strategy: leastrecent",
        ("departments[0].strategy", "'least_recent'", "'round_robin'", "got 'leastrecent'"),
    ),
    "a penalty for somebody who is not a member is named": Broken(
        "office.yaml",
        (("members: [ivanov, petrov]", "members: [ivanov, petrov]\n    penalties: {sidorova: 2}"),),
        "    penalties: {sidorova: 2}",
        ("penalty for 'sidorova', who is not a member of 'sales'",),
    ),
    "a negative member penalty is named": Broken(
        "office.yaml",
        (("members: [ivanov, petrov]", "members: [ivanov, {employee: petrov, penalty: -1}]"),),
        "  - id: sales",
        ("the penalty of member 'petrov'", "0 or more, got -1"),
    ),
    "a queue's skill template with an unknown placeholder is named": Broken(
        "agents.yaml",
        (('skills: ["{var.lang}"]', 'skills: ["{lang}"]'),),
        'skills: ["{lang}"]',
        ("node helpdesk.queue.skills[0]", "unknown placeholder {lang}"),
    ),
    "a caller sent to an unknown scenario is named": Broken(
        "office.yaml",
        (
            (
                "timezone: Europe/Moscow\n",
                'timezone: Europe/Moscow\ncallers: [{caller: "79000000001", scenario: ofice}]\n',
            ),
        ),
        "callers: [{caller:",
        ("callers[0].scenario", "unknown scenario 'ofice'"),
    ),
    "a caller sent to a node the scenario does not have is named": Broken(
        "office.yaml",
        (
            (
                "timezone: Europe/Moscow\n",
                "timezone: Europe/Moscow\n"
                'callers: [{caller: "79000000001", scenario: office, node: bye}]\n',
            ),
        ),
        "callers: [{caller:",
        ("callers[0].node", "scenario 'office' has no node 'bye'"),
    ),
    "a queue of an unknown department is named": Broken(
        "call-centre.yaml",
        (("        department: support\n", "        department: suport\n"),),
        "        department: suport",
        ("node support.queue.department", "unknown department 'suport'"),
    ),
    "a schedule node with an unknown schedule is named": Broken(
        "office.yaml",
        (("        schedule: office\n", "        schedule: ofice\n"),),
        "        schedule: ofice",
        ("node office.hours.schedule", "unknown schedule 'ofice'"),
    ),
    "a number that starts an unknown scenario is named": Broken(
        "office.yaml",
        (('"8 495 765-43-21", scenario: office}', '"8 495 765-43-21", scenario: ofice}'),),
        "scenario: ofice}",
        ("numbers[1].scenario", "unknown scenario 'ofice'"),
    ),
    "an exit to an unknown node points nowhere": Broken(
        "multi-number.yaml",
        (("target: shop, noanswer: ring_reception}", "target: shop, noanswer: ring_recepton}"),),
        "noanswer: ring_recepton",
        ("node inbound.ring_shop.noanswer", "points to unknown node 'ring_recepton'"),
    ),
    "an unknown prompt is named": Broken(
        "multi-number.yaml",
        (("        prompt: support-menu\n", "        prompt: suport-menu\n"),),
        "prompt: suport-menu",
        ("node inbound.support_ivr.prompt", "unknown prompt 'suport-menu'"),
    ),
    "a switch without default misses a required exit": Broken(
        "multi-number.yaml",
        (("        default: other\n", ""),),
        "      route:",
        ("node inbound.route", "missing required exit 'default'"),
    ),
    "a menu without default misses a required exit": Broken(
        "office.yaml",
        (("        default: ring_sales\n", ""),),
        "      menu:",
        ("node office.menu", "missing required exit 'default'"),
    ),
    "a schedule node without open misses a required exit": Broken(
        "office.yaml",
        (("        open: welcome\n", ""),),
        "      hours:",
        ("node office.hours.open: missing required exit 'open'",),
    ),
    "a dial without noanswer misses a required exit": Broken(
        "multi-number.yaml",
        (("target: sales, noanswer: ring_reception}", "target: sales}"),),
        "ring_sales: {type: dial, target: sales}",
        ("node inbound.ring_sales", "missing required exit 'noanswer'"),
    ),
    "a second employee with the same id is a duplicate": Broken(
        "office.yaml",
        (("  - {id: petrov, name: Pyotr", "  - {id: ivanov, name: Pyotr"),),
        "{id: ivanov, name: Pyotr",
        ("employees[1].id", "duplicate employee id 'ivanov'"),
    ),
    "a second phone with the same extension is a duplicate": Broken(
        "office.yaml",
        (('name: Pyotr Petrov, extension: "102"', 'name: Pyotr Petrov, extension: "101"'),),
        'name: Pyotr Petrov, extension: "101"',
        ("extension 101", "employee 'ivanov'"),
    ),
    "the same number written in another format is a duplicate": Broken(
        "office.yaml",
        (('{number: "8 495 765-43-21", scenario', '{number: "84951234567", scenario'),),
        '{number: "84951234567", scenario',
        ("numbers[1].number", "'84951234567' (74951234567) is listed twice"),
    ),
    "a time like 25:00 is not a time of day": Broken(
        "office.yaml",
        (('sat: "10:00-14:00"', 'sat: "10:00-25:00"'),),
        'sat: "10:00-25:00"',
        ("schedules.office.hours.sat", "'25:00' is not a time of day"),
    ),
    "a range that ends before it starts is rejected": Broken(
        "office.yaml",
        (('lunch: {mon-fri: "13:00-14:00"}', 'lunch: {mon-fri: "14:00-13:00"}'),),
        '"14:00-13:00"',
        ("schedules.office.breaks.lunch", "'14:00-13:00' ends before it starts"),
    ),
    "opening hours from 18:00 to 09:00 end before they start": Broken(
        "office.yaml",
        (('mon-fri: "09:00-18:00"', 'mon-fri: "18:00-09:00"'),),
        'mon-fri: "18:00-09:00"',
        ("schedules.office.hours.mon-fri", "ends before it starts"),
    ),
    "an unknown day is rejected": Broken(
        "office.yaml",
        (('sat: "10:00-14:00"', 'saturday: "10:00-14:00"'),),
        'saturday: "10:00-14:00"',
        ("'saturday' is not a day",),
    ),
    "an unknown template placeholder is rejected": Broken(
        "multi-number.yaml",
        (('        value: "{called}"\n', '        value: "{caled}"\n'),),
        'value: "{caled}"',
        ("node inbound.route.value", "unknown placeholder {caled}"),
    ),
    "a notify and a switch pointing at each other are an instant loop": Broken(
        "multi-number.yaml",
        (("        default: other\n", "        default: log_called\n"),),
        "      log_called:",
        ("loop", "inbound.log_called -> inbound.route -> inbound.log_called"),
    ),
    "an assign and a switch pointing at each other are an instant loop": Broken(
        "call-centre.yaml",
        (
            ("        notfound: queue\n", "        notfound: remember\n"),
            (
                "      queue:\n",
                '      remember: {type: assign, var: tries, value: "1", next: again}\n'
                '      again: {type: switch, value: "{var.tries}", cases: {"2": queue},'
                " default: remember}\n"
                "      queue:\n",
            ),
        ),
        "      remember: {type: assign",
        ("loop", "support.remember -> support.again -> support.remember"),
    ),
    "a dial whose busy exit leads back to itself is an instant loop": Broken(
        "multi-number.yaml",
        (
            (
                "target: shop, noanswer: ring_reception}",
                "target: shop, noanswer: ring_reception, busy: ring_shop}",
            ),
        ),
        "busy: ring_shop}",
        ("loop", "inbound.ring_shop -> inbound.ring_shop"),
    ),
    "an admin address that is not HOST:PORT is named": Broken(
        "office.yaml",
        (("timezone: Europe/Moscow\n", "timezone: Europe/Moscow\nadmin:\n  listen: everywhere\n"),),
        "  listen: everywhere",
        ("admin.listen 'everywhere': use HOST:PORT, e.g. 127.0.0.1:8089",),
    ),
    "an admin port out of range is named": Broken(
        "office.yaml",
        (
            (
                "timezone: Europe/Moscow\n",
                "timezone: Europe/Moscow\nadmin: {agi_listen: '0.0.0.0:80900'}\n",
            ),
        ),
        "admin: {agi_listen:",
        ("admin.agi_listen '0.0.0.0:80900': use HOST:PORT, e.g. 127.0.0.1:8090",),
    ),
    "a YAML syntax error reports its line": Broken(
        "office.yaml",
        (("    name: Ivan Ivanov\n", "    name: Ivan: Ivanov\n"),),
        "    name: Ivan: Ivanov",
        ("YAML syntax",),
    ),
    "a YAML tag that does not fit its value is reported, not a crash": Broken(
        "office.yaml",
        (("    ring_delay: 15 ", "    ring_delay: !!int soon "),),
        "ring_delay: !!int soon",
        ("YAML syntax", "'soon' cannot be read as !!int"),
    ),
    "a YAML duplicate key is reported at the later key": Broken(
        "office.yaml",
        (("        wait: 5\n", "        wait: 5\n        wait: 7\n"),),
        "        wait: 7",
        ("node office.menu.wait", "duplicate key 'wait'"),
    ),
    "an unknown node type lists the known ones": Broken(
        "office.yaml",
        (("        type: voicemail\n", "        type: voicemial\n"),),
        "        type: voicemial",
        ("node office.voicemail", "unknown type 'voicemial'", ", ".join(NODE_TYPES)),
    ),
    "a callback node reached without passing a queue has no department (issue 11)": Broken(
        "call-centre.yaml",
        (("        notfound: queue\n", "        notfound: take_callback\n"),),
        "      take_callback:",
        (
            "node support.take_callback",
            "no department to call back for",
            "(support.returning -> support.take_callback)",
            "set `department:`",
        ),
    ),
    "a dial-string template with a placeholder it cannot fill is named": Broken(
        "office.yaml",
        (
            (
                "\ndepartments:\n",
                "\nasterisk:\n  endpoints:\n    employee: PJSIP/{ext}\ndepartments:\n",
            ),
        ),
        "  endpoints:",
        ("employee: 'PJSIP/{ext}' may use only {extension}, not {ext}",),
    ),
    "a phone on another instance's asterisk needs a name": Broken(
        "office.yaml",
        (
            (
                'extension: "102", skills: [sales]}',
                'extension: "102", asterisk: "", skills: [sales]}',
            ),
        ),
        'asterisk: ""',
        ("employees[1].asterisk", "at least 1 character"),
    ),
    "a callback node as a scenario's start has no department": Broken(
        "call-centre.yaml",
        (("    start: returning\n", "    start: take_callback\n"),),
        "      take_callback:",
        ("no department to call back for", "(support.take_callback, the scenario's start)"),
    ),
}


@pytest.mark.parametrize("case", list(BROKEN.values()), ids=list(BROKEN))
def test_a_broken_variant_fails_check_at_the_line_of_the_mistake(
    case: Broken, tmp_path: Path
) -> None:
    text = edited(case.example, case.edits)
    variant = tmp_path / case.example
    variant.write_text(text, encoding="utf-8")
    line = line_number(text, case.blamed)

    result = check(variant)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "ok" not in result.stdout.splitlines()
    assert "Traceback" not in result.stderr
    blamed = [row for row in lines_at(result.stdout, variant, line) if ": warning: " not in row]
    assert blamed, f"nothing reported at {variant.name}:{line}:\n{result.stdout}"
    assert any(all(words in row for words in case.says) for row in blamed), result.stdout


def test_an_unreachable_node_is_a_warning_and_the_file_still_passes(tmp_path: Path) -> None:
    text = edited(
        "office.yaml",
        (("        prompt: goodbye\n", "        prompt: goodbye\n      orphan: {type: hangup}\n"),),
    )
    variant = tmp_path / "office.yaml"
    variant.write_text(text, encoding="utf-8")
    line = line_number(text, "orphan: {type: hangup}")

    result = check(variant)

    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "ok"
    warned = lines_at(result.stdout, variant, line)
    assert len(warned) == 1
    assert warned[0].startswith(f"{variant}:{line}: warning: node office.orphan: unreachable")


def test_quiet_hides_the_unreachable_warning(tmp_path: Path) -> None:
    text = edited(
        "office.yaml",
        (("        prompt: goodbye\n", "        prompt: goodbye\n      orphan: {type: hangup}\n"),),
    )
    variant = tmp_path / "office.yaml"
    variant.write_text(text, encoding="utf-8")

    result = check(variant, options=("--quiet",))

    assert result.returncode == 0
    assert result.stdout.splitlines() == ["ok"]


def test_every_problem_in_one_file_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = edited(
        "office.yaml",
        (
            ("    skills: [sales]\n", "    skils: [sales]\n"),
            ("members: [sidorova, kuznetsova]", "members: [sidorova, kuznetsov]"),
            ('sat: "10:00-14:00"', 'sat: "10:00-25:00"'),
            ("        prompt: closed\n", "        prompt: closd\n"),
            ("        next: goodbye\n", "        next: good_bye\n"),
        ),
    )
    variant = tmp_path / "office.yaml"
    variant.write_text(text, encoding="utf-8")
    expected = {
        line_number(text, "skils: [sales]"): "unknown key 'skils'",
        line_number(text, "kuznetsov]"): "unknown employee 'kuznetsov'",
        line_number(text, '"10:00-25:00"'): "'25:00' is not a time of day",
        line_number(text, "prompt: closd"): "unknown prompt 'closd'",
        line_number(text, "next: good_bye"): "unknown node 'good_bye'",
    }

    result = check(variant)

    assert result.returncode == 2
    errors = [row for row in result.stdout.splitlines() if ": warning: " not in row]
    assert len(errors) == len(expected), result.stdout
    for line, words in expected.items():
        assert any(words in row for row in lines_at(result.stdout, variant, line)), (
            f"line {line} should say {words!r}:\n{result.stdout}"
        )


def test_a_broken_settings_section_does_not_hide_problems_elsewhere(tmp_path: Path) -> None:
    """A typo under `numbering:` is reported together with an unknown employee below it."""
    text = edited(
        "office.yaml",
        (
            ('  city_code: "495"', '  city_cod: "495"'),
            ("members: [sidorova, kuznetsova]", "members: [sidorova, kuznetsov]"),
        ),
    )
    variant = tmp_path / "office.yaml"
    variant.write_text(text, encoding="utf-8")

    result = check(variant)

    assert result.returncode == 2
    assert lines_at(result.stdout, variant, line_number(text, "city_cod:"))
    assert lines_at(result.stdout, variant, line_number(text, "kuznetsov]"))


def test_a_node_set_aside_for_its_error_does_not_make_others_look_unreachable(
    tmp_path: Path,
) -> None:
    """Only the real mistake is printed, not warnings about the nodes it leads to."""
    text = edited("office.yaml", (("        wait: 5\n", "        wait: soon\n"),))
    variant = tmp_path / "office.yaml"
    variant.write_text(text, encoding="utf-8")

    result = check(variant)

    assert result.returncode == 2
    reported = result.stdout.splitlines()
    assert len(reported) == 1, result.stdout
    assert reported[0].startswith(f"{variant}:{line_number(text, 'wait: soon')}: ")


def test_a_prompt_set_aside_for_its_own_error_is_not_reported_again_where_played(
    tmp_path: Path,
) -> None:
    text = edited("multi-number.yaml", (("duration: 4,", "duration: long,"),))
    variant = tmp_path / "multi-number.yaml"
    variant.write_text(text, encoding="utf-8")

    result = check(variant)

    assert result.returncode == 2
    reported = result.stdout.splitlines()
    assert len(reported) == 1, result.stdout
    assert reported[0].startswith(f"{variant}:{line_number(text, 'duration: long')}: ")
    assert "prompts.shop-welcome.duration" in reported[0]


def test_a_bad_file_among_good_ones_fails_and_names_only_itself(tmp_path: Path) -> None:
    text = edited("office.yaml", (("    skills: [sales]\n", "    skils: [sales]\n"),))
    variant = tmp_path / "broken.yaml"
    variant.write_text(text, encoding="utf-8")

    result = check("examples/call-centre.yaml", variant, "examples/multi-number.yaml")

    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{variant}:{line_number(text, 'skils')}: employees[0].skils: unknown key 'skils'"
    ]


YES_NO_MENU = """\
scenarios:
  main:
    start: ask
    nodes:
      ask:
        type: menu
        prompt: main-menu
        options: {"1": yes, "2": no, "3": on, "4": off}
        default: no
      yes: {type: hangup, prompt: goodbye}
      no: {type: hangup}
      on: {type: dialplan, context: "on"}
      off: {type: goto, scenario: main, node: yes}
"""


def test_yes_no_on_off_stay_words_as_menu_targets_and_node_names(tmp_path: Path) -> None:
    config = tmp_path / "yes-no.yaml"
    config.write_text(YES_NO_MENU, encoding="utf-8")

    result = check(config)

    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == ["ok"]


def test_the_yes_no_menu_leads_to_the_nodes_named_yes_and_no() -> None:
    """What `check` accepted is what the engine reads: the words, not booleans."""
    from switchboard.config.load import load_text

    company = load_text(YES_NO_MENU, "yes-no.yaml").raise_for_errors()
    menu = company.node("main", "ask")
    assert menu.exits() == {
        "default": "no",
        "option 1": "yes",
        "option 2": "no",
        "option 3": "on",
        "option 4": "off",
    }
    assert set(company.scenario("main").nodes) == {"ask", "yes", "no", "on", "off"}


@pytest.mark.parametrize(
    "edits",
    [
        (("        overflow: voicemail\n", "        overflow: take_callback\n"),),
        (
            ("        notfound: queue\n", "        notfound: take_callback\n"),
            ("        type: callback\n", "        type: callback\n        department: support\n"),
        ),
    ],
    ids=["reached only from the queue, overflow too", "its own department"],
)
def test_a_callback_node_that_knows_its_department_passes(
    edits: tuple[tuple[str, str], ...], tmp_path: Path
) -> None:
    variant = tmp_path / "call-centre.yaml"
    variant.write_text(edited("call-centre.yaml", edits), encoding="utf-8")

    result = check(variant)

    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "ok"
    assert "department" not in result.stdout
