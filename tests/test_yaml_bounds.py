"""Hostile configuration files: each bound of the YAML loader is one ``FILE:LINE`` error.

A few hundred bytes of aliases ("billion laughs"), an alias inside its own
value, nesting thousands deep, a file of many megabytes: every command that
reads a configuration (``check``, ``simulate``, ``demo``, ``run``, ``config
import`` and ``run --from-db``) answers with one line naming the file and the
line, exits 2, and does so in seconds.  The commands run in a subprocess whose
address space is capped, so a regression fails the test instead of taking the
machine's memory.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.config.load import load_text
from switchboard.config.yaml_source import load_yaml
from tests.helpers import EXAMPLES, ROOT

# the bounds as the README gives them (switchboard.config.yaml_source)
MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 10_000

MEMORY_CAP = 1536 * 1024 * 1024  # bytes of address space a command may take here
TIMEOUT = 60.0  # seconds: generous; every refusal here takes about one
OFFICE = (EXAMPLES / "office.yaml").read_text(encoding="utf-8")


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def switchboard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, memory capped; a hang past `TIMEOUT` fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False,
        preexec_fn=_cap_memory, env=env,
    )  # fmt: skip


def line_of(text: str, marker: str) -> int:
    """The 1-based line of the first line of ``text`` that contains ``marker``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


# --- the hostile files: (text, the line the error must name, words of its message) ----------


def billion_laughs() -> tuple[str, range, str]:
    """610 bytes, 10^9 values once expanded: refused at one of its alias lines."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for name, prev in zip("bcdefghi", "abcdefgh", strict=True):
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    return OFFICE + text, range(OFFICE.count("\n") + 2, OFFICE.count("\n") + 10), "aliases expanded"


def recursive_anchor() -> tuple[str, range, str]:
    text = OFFICE + "loop: &loop\n  - name: again\n    inner: *loop\n"
    line = line_of(text, "inner: *loop")
    return text, range(line, line + 1), "inside the value it names"


def deep_flow() -> tuple[str, range, str]:
    """3,000 lists in one another, on one line."""
    text = OFFICE + "deep: " + "[" * 3000 + "]" * 3000 + "\n"
    line = line_of(text, "deep:")
    return text, range(line, line + 1), f"nested more than {MAX_DEPTH} deep"


def deep_block() -> tuple[str, range, str]:
    """Mappings in one another, one per line: refused at the first one past the bound."""
    text = OFFICE + "deep:\n" + "".join(f"{'  ' * (n + 1)}k{n}:\n" for n in range(3000 // 20))
    text += "  " * 200 + "leaf: 1\n"
    # the top mapping is level 1, deep's value level 2: k{n} opens level n + 2
    line = line_of(text, f" k{MAX_DEPTH - 1}:")
    return text, range(line, line + 1), f"nested more than {MAX_DEPTH} deep"


def oversize() -> tuple[str, range, str]:
    """A valid office under more comments than the size bound."""
    comment = "# " + "x" * 98 + "\n"
    text = comment * (MAX_BYTES // len(comment) + 1) + OFFICE
    return text, range(1, 2), "at most 4 MiB"


def many_aliases() -> tuple[str, range, str]:
    text = OFFICE + "one: &one 1\nmany:\n" + "  - *one\n" * (MAX_ALIASES + 1)
    line = text.count("\n")  # the last alias is the one too many
    return text, range(line, line + 1), f"more than {MAX_ALIASES:,} aliases"


HOSTILE = {
    "billion laughs": billion_laughs,
    "recursive anchor": recursive_anchor,
    "3,000-deep flow nesting": deep_flow,
    "deep block nesting": deep_block,
    "oversize file": oversize,
    "too many aliases": many_aliases,
}


def the_one_line(output: str, filename: str, lines: range, words: str) -> None:
    rows = output.splitlines()
    assert len(rows) == 1, output[:2000]
    head, _, message = rows[0].partition(": ")
    name, _, line = head.rpartition(":")
    assert name == filename, rows[0]
    assert int(line) in lines, rows[0]
    assert words in message, rows[0]


@pytest.mark.parametrize("case", HOSTILE)
def test_check_answers_a_hostile_file_with_one_file_line_error_within_seconds(
    case: str, tmp_path: Path
) -> None:
    text, lines, words = HOSTILE[case]()
    path = tmp_path / "company.yaml"
    path.write_text(text, encoding="utf-8")
    began = time.monotonic()
    done = switchboard("check", str(path))
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr == ""
    the_one_line(done.stdout, str(path), lines, words)
    assert time.monotonic() - began < TIMEOUT / 2


@pytest.mark.parametrize(
    "command",
    [
        ("simulate", "{path}", "--called", "74951234567"),
        ("demo", "{path}"),
        ("run", "{path}"),
        ("agi", "{path}"),
    ],
    ids=["simulate", "demo", "run", "agi"],
)
@pytest.mark.parametrize("case", ["billion laughs", "3,000-deep flow nesting", "oversize file"])
def test_every_command_that_reads_a_file_refuses_it_in_one_line(
    command: tuple[str, ...], case: str, tmp_path: Path
) -> None:
    text, lines, words = HOSTILE[case]()
    path = tmp_path / "company.yaml"
    path.write_text(text, encoding="utf-8")
    done = switchboard(*(part.format(path=path) for part in command))
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == ""
    the_one_line(done.stderr, str(path), lines, words)


def count_versions(dsn: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM config_versions"))
        finally:
            await conn.close()

    return asyncio.run(count())


@pytest.mark.parametrize("case", HOSTILE)
def test_config_import_refuses_a_hostile_file_in_one_line_and_stores_nothing(
    case: str, db: str, tmp_path: Path
) -> None:
    text, lines, words = HOSTILE[case]()
    path = tmp_path / "company.yaml"
    path.write_text(text, encoding="utf-8")
    done = switchboard("config", "import", str(path), "--dsn", db)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr == ""
    the_one_line(done.stdout, str(path), lines, words)
    assert count_versions(db) == 0


@pytest.mark.parametrize("case", ["billion laughs", "deep block nesting", "oversize file"])
def test_run_from_db_refuses_a_hostile_stored_version_in_one_line(case: str, db: str) -> None:
    """A version stored some other way (an older release, a hand-made INSERT, a program
    calling `import_config`): loading it applies the same bounds."""
    text, lines, words = HOSTILE[case]()

    async def store() -> None:
        conn = await asyncpg.connect(db)
        try:
            await conn.execute(
                "INSERT INTO config_versions (source, sha256, yaml) VALUES ($1, $2, $3)",
                "stored.yaml", "not-a-real-digest", text,
            )  # fmt: skip
            await conn.execute(  # and made current, as `config activate` would
                "INSERT INTO config_activations (config_version, activated_by) VALUES (1, 'sql')"
            )
        finally:
            await conn.close()

    asyncio.run(store())
    done = switchboard("run", "--from-db", "--dsn", db)
    assert done.returncode == 2, done.stderr[-2000:]
    the_one_line(done.stderr, "stored.yaml@v1", lines, words)


# --- what the bounds leave alone ----------------------------------------------------------

WORD = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,7}", fullmatch=True)
LEAF = st.one_of(WORD, st.integers(-(10**12), 10**12), st.booleans(), st.none())
TREE = st.recursive(
    LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(WORD, inner, max_size=5)),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shared=TREE, others=st.dictionaries(WORD, TREE, max_size=5), uses=st.integers(1, 6))
def test_any_small_document_with_anchors_reads_back_as_written(
    shared: Any, others: dict[str, Any], uses: int
) -> None:
    # the same object in several places: the dumper writes it once with &anchor, then *aliases
    data: dict[str, Any] = {**others, "shared": [shared] * uses, "again": {"x": shared}}
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    assert load_yaml(text).data == data


EMPLOYEE = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[A-Z][a-z]{1,8} [A-Z][a-z]{1,8}", fullmatch=True),
        "skills": st.lists(st.sampled_from(["sales", "support", "english"]), max_size=3),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    template=EMPLOYEE,
    staff=st.lists(st.tuples(st.booleans(), EMPLOYEE), min_size=1, max_size=12),
)
def test_a_valid_config_loads_the_same_with_merge_keys_as_written_out(
    template: dict[str, Any], staff: list[tuple[bool, dict[str, Any]]]
) -> None:
    """Merge keys and aliases within the bounds give the very company the long form does."""
    written = [f"  - {_inline({'id': 'template', **template})}"]
    anchored = [f"  - &template {_inline({'id': 'template', **template})}"]
    for n, (merged, own) in enumerate(staff):
        entry = {"id": f"e{n}", **(template if merged else own)}
        written.append(f"  - {_inline(entry)}")
        anchored.append(f"  - {{<<: *template, id: e{n}}}" if merged else written[-1])
    long_form = load_text(_office_with(written), "long.yaml")
    short_form = load_text(_office_with(anchored), "short.yaml")
    assert long_form.company is not None, [p.format("long.yaml") for p in long_form.errors]
    assert short_form.company is not None, [p.format("short.yaml") for p in short_form.errors]
    assert short_form.company.config == long_form.company.config


def _inline(value: dict[str, Any]) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()


def _office_with(entries: list[str]) -> str:
    """The example office with more employees at the top of its list."""
    return OFFICE.replace("employees:\n", "employees:\n" + "".join(e + "\n" for e in entries), 1)
