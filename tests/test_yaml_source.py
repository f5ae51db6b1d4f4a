"""Reading YAML the way telephony people write it: YAML 1.2 scalars, lines, duplicates, merges."""

from __future__ import annotations

import pytest

from switchboard.config.yaml_source import YamlSyntaxError, load_yaml


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "On", "OFF", "Yes", "NO", "y", "n"])
def test_yes_no_on_off_stay_words_as_values_and_keys(word: str) -> None:
    doc = load_yaml(f"value: {word}\n{word}: key\n")
    assert doc.data == {"value": word, word: "key"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00", "09:00"),  # YAML 1.1 would read 540 (sexagesimal)
        ("24:00", "24:00"),
        ("09:00-18:00", "09:00-18:00"),
        ("0495", "0495"),  # YAML 1.1 would read the octal number 325
        ("0101", "0101"),
        ("2027-01-01", "2027-01-01"),  # YAML 1.1 would read a date
        ("05-09", "05-09"),
        ("+7 (495) 123-45-67", "+7 (495) 123-45-67"),
        ("0x1F", "0x1F"),
        ("1_000", "1_000"),
    ],
)
def test_times_leading_zeros_and_dates_stay_text(text: str, expected: str) -> None:
    assert load_yaml(f"v: {text}\n").data == {"v": expected}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("false", False), ("True", True), ("FALSE", False)],
)
def test_true_and_false_are_booleans(text: str, expected: bool) -> None:
    value = load_yaml(f"v: {text}\n").data["v"]
    assert value is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("5", 5), ("-3", -3), ("+12", 12), ("120", 120), ("1.5", 1.5), ("0.25", 0.25)],
)
def test_whole_and_decimal_numbers_parse_as_numbers(text: str, expected: float) -> None:
    value = load_yaml(f"v: {text}\n").data["v"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", ["~", "null", "", "Null"])
def test_empty_and_null_values_are_none(text: str) -> None:
    assert load_yaml(f"v: {text}\n").data == {"v": None}


def test_numeric_keys_become_text_so_menu_options_match_pressed_keys() -> None:
    doc = load_yaml("options: {1: a, 22: b, true: c}\n")
    assert doc.data == {"options": {"1": "a", "22": "b", "true": "c"}}


def test_an_empty_file_is_an_empty_mapping() -> None:
    assert load_yaml("# nothing here\n").data == {}


SCENARIO = """\
timezone: Europe/Moscow
employees:
  - id: ivanov
    name: Ivan
  - {id: petrov, extension: "102"}
scenarios:
  main:
    start: menu
    nodes:
      menu:
        type: menu
        prompt:
          - welcome
          - main-menu
        options: {"1": x}
"""


def test_every_key_and_list_item_knows_its_line() -> None:
    lines = load_yaml(SCENARIO).lines
    assert lines[("timezone",)] == 1
    assert lines[("employees",)] == 2
    assert lines[("employees", 0)] == 3
    assert lines[("employees", 0, "id")] == 3
    assert lines[("employees", 0, "name")] == 4
    assert lines[("employees", 1)] == 5
    assert lines[("employees", 1, "extension")] == 5
    assert lines[("scenarios", "main", "nodes", "menu")] == 10
    assert lines[("scenarios", "main", "nodes", "menu", "type")] == 11
    assert lines[("scenarios", "main", "nodes", "menu", "prompt")] == 12
    assert lines[("scenarios", "main", "nodes", "menu", "prompt", 1)] == 14
    assert lines[("scenarios", "main", "nodes", "menu", "options", "1")] == 15


def test_a_missing_path_is_placed_at_its_nearest_parent() -> None:
    doc = load_yaml(SCENARIO)
    assert doc.line_of(("scenarios", "main", "nodes", "menu", "default")) == 10
    assert doc.line_of(("employees", 1, "mobile")) == 5
    assert doc.line_of(()) == 1


def test_a_duplicate_key_is_recorded_with_the_later_line() -> None:
    doc = load_yaml("a: 1\nnodes:\n  x: 1\n  y: 2\n  x: 3\n")
    assert doc.duplicate_keys == [(("nodes", "x"), 5)]
    assert doc.lines[("nodes", "x")] == 5


def test_a_file_without_duplicates_records_none() -> None:
    assert load_yaml(SCENARIO).duplicate_keys == []


MERGE = """\
ring: &ring
  type: dial
  ring_timeout: 20
  noanswer: voicemail
sales:
  <<: *ring
  target: sales
support:
  target: support
  noanswer: support_queue
  <<: *ring
"""


def test_a_merge_key_copies_the_anchor_and_local_keys_win() -> None:
    data = load_yaml(MERGE).data
    assert data["sales"] == {
        "type": "dial",
        "ring_timeout": 20,
        "noanswer": "voicemail",
        "target": "sales",
    }
    assert data["support"] == {
        "type": "dial",
        "ring_timeout": 20,
        "noanswer": "support_queue",
        "target": "support",
    }


def test_a_local_key_after_a_merge_key_is_not_a_duplicate() -> None:
    doc = load_yaml("base: &b {x: 1, y: 2}\nover:\n  <<: *b\n  x: 5\n")
    assert doc.data["over"] == {"x": 5, "y": 2}
    assert doc.duplicate_keys == []


def test_merged_keys_keep_the_anchor_lines_and_local_keys_their_own() -> None:
    lines = load_yaml(MERGE).lines
    assert lines[("sales", "type")] == 2
    assert lines[("sales", "target")] == 7
    assert lines[("support", "noanswer")] == 10  # written before the merge key, still its own
    assert lines[("support", "ring_timeout")] == 3


def test_a_list_of_merges_takes_the_first_one_that_has_a_key() -> None:
    doc = load_yaml("a: &a {k: 1}\nb: &b {k: 2, j: 3}\nc:\n  <<: [*a, *b]\n")
    assert doc.data["c"] == {"k": 1, "j": 3}


def test_a_duplicate_in_an_anchor_is_reported_once_not_at_every_alias() -> None:
    doc = load_yaml("a: &a {k: 1, k: 2}\nb: {<<: *a}\nc: {<<: *a}\n")
    assert doc.duplicate_keys == [(("a", "k"), 1)]


def test_a_merge_of_a_plain_value_is_a_syntax_error_at_its_line() -> None:
    with pytest.raises(YamlSyntaxError) as error:
        load_yaml("a: 1\nb:\n  <<: 5\n")
    assert error.value.line == 3


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\nb: [1, 2\n", 3),  # unclosed flow list: noticed at the end of the text
        ("a: 1\nb: c: d\n", 2),
        ("a:\n  - x\n y: 1\n", 3),
        ("a: 1\nb: !!int soon\n", 2),
        ("a: 1\nb: !custom x\n", 2),
        ("a: 1\nb: !!python/name:os.system\n", 2),
    ],
)
def test_text_that_is_not_yaml_raises_a_syntax_error_with_its_line(text: str, line: int) -> None:
    with pytest.raises(YamlSyntaxError) as error:
        load_yaml(text)
    assert error.value.line == line
    assert error.value.message.startswith("YAML syntax")
