"""The pages in docs/ stay true to the code they describe.

- every tutorial configuration (docs/tutorial/step*.yaml) passes `switchboard check`;
- every `switchboard COMMAND [SUBCOMMAND]` in a code block of docs/*.md exists: its
  ``--help`` exits 0 (the real CLI, once per distinct command);
- every `$ switchboard simulate ...` (and `check` of files that exist) shown with its
  output still prints exactly that output;
- every relative link between the pages resolves, anchors included, and none leaves
  the repository;
- the top-level README.md stays a short front page: under 10 KB, its first two code
  blocks the demo and the test command (the one `.ci/run` runs), and a link to every
  page of docs/ (README.md's links and commands are checked with the pages');
- the configuration reference names every field of the configuration model
  (`switchboard/config/model.py`), and has a section for every node type.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import typing
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel

from switchboard.config import model

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
FRONT = ROOT / "README.md"
CHECKED = [FRONT, *PAGES]  # the pages whose commands and links are checked
STEPS = sorted((DOCS / "tutorial").glob("step*.yaml"))
REFERENCE = DOCS / "configuration.md"

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def cli(
    *args: str, shell: str | None = None, shim: Path | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """The real `switchboard` command, run from the repository's top folder (or ``cwd``).

    ``shell``: a command line as the docs show it, run by bash with ``shim`` (a folder
    holding a `switchboard` script) first on the PATH, for the `$(...)` in some."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["NO_COLOR"] = "1"
    if shell is None:
        command = [sys.executable, "-m", "switchboard", *args]
    else:
        assert shim is not None
        env["PATH"] = f"{shim}{os.pathsep}{env.get('PATH', '')}"
        command = [shutil.which("bash") or "/bin/bash", "-c", shell]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a `switchboard` script that runs this interpreter's CLI."""
    folder = tmp_path_factory.mktemp("shim")
    script = folder / "switchboard"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m switchboard "$@"\n')
    script.chmod(0o755)
    return folder


def in_parallel(jobs: Sequence[Sequence[str]]) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda args: cli(*args), jobs))


# --- code blocks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    page: Path
    number: int
    text: str

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.number}"


def code_blocks(page: Path) -> Iterator[list[Line]]:
    """The lines of each fenced code block of a page."""
    block: list[Line] | None = None
    fence = ""
    for number, text in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        found = FENCE.match(text)
        if block is None:
            if found:
                block, fence = [], found.group(2)
        elif found and found.group(2).startswith(fence) and not text.strip()[len(fence) :]:
            yield block
            block = None
        else:
            block.append(Line(page, number, text))


def logical_lines(lines: Sequence[Line]) -> Iterator[Line]:
    """Lines with their continuations (a line ending in ``\\`` goes on in the next) joined:
    ``docker run ... \\`` then ``-v switchboard-state:/var/lib/switchboard \\`` is one
    command line, not a second one."""
    pending: Line | None = None
    for line in lines:
        joined = line
        if pending is not None:
            joined = Line(pending.page, pending.number, f"{pending.text} {line.text.strip()}")
            pending = None
        if joined.text.rstrip().endswith("\\"):
            pending = Line(joined.page, joined.number, joined.text.rstrip()[:-1].rstrip())
            continue
        yield joined
    if pending is not None:
        yield pending


def invocations(text: str) -> Iterator[list[str]]:
    """The arguments of each `switchboard` command on a command line (after ``$ ``,
    environment assignments and ``sudo``; one per ``&&``, ``;`` or ``|`` segment)."""
    text = text.strip()
    text = text.removeprefix("$ ")
    if not text or text.startswith("#"):
        return
    for segment in re.split(r"&&|\|\||;|\||\$\(", text):
        try:
            words = shlex.split(segment, comments=True)
        except ValueError:
            words = segment.split()
        while words and (words[0] == "sudo" or words[0].startswith("-") or _env(words[0])):
            if words[0] == "-u" and len(words) > 1:  # sudo -u USER
                words = words[1:]
            words = words[1:]
        if words and words[0].rpartition("=")[2].rpartition("/")[2] == "switchboard":
            yield words[1:]
        elif words[:3] in (["python", "-m", "switchboard"], ["python3", "-m", "switchboard"]):
            yield words[3:]


def _env(word: str) -> bool:
    """``NAME=value`` that sets a variable (not ``ExecStart=.../switchboard``)."""
    return bool(ASSIGNMENT.match(word)) and word.rpartition("/")[2] != "switchboard"


def documented_commands() -> dict[tuple[str, ...], Line]:
    """Each distinct `switchboard` command (first word, and a second word that could be a
    subcommand) shown in a code block, with where it is first shown."""
    found: dict[tuple[str, ...], Line] = {}
    for page in CHECKED:
        for block in code_blocks(page):
            # a block that shows a session (`$ command`, then its output): only the commands
            commands = [line for line in block if line.text.startswith("$ ")] or block
            for line in logical_lines(commands):
                for args in invocations(line.text):
                    if not args:
                        continue
                    key = (args[0],)
                    if len(args) > 1 and re.fullmatch(r"[a-z][a-z-]*", args[1]):
                        key = (args[0], args[1])
                    found.setdefault(key, line)
    return found


def test_the_docs_are_there() -> None:
    names = {page.name for page in PAGES}
    assert {
        "README.md",
        "getting-started.md",
        "deploy.md",
        "scenarios.md",
        "configuration.md",
        "operations.md",
        "why-our-own-clients.md",
        "commands.md",
        "ari.md",
        "fastagi.md",
        "admin.md",
        "storage.md",
        "container.md",
        "testing.md",
        "architecture.md",
        "benchmarks.md",
    } <= names
    assert len(STEPS) >= 6, STEPS


@pytest.mark.parametrize("step", STEPS, ids=[step.name for step in STEPS])
def test_tutorial_step_passes_check(step: Path) -> None:
    done = cli("check", str(step.relative_to(ROOT)))
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", ""), done


def test_every_documented_command_exists() -> None:
    """`switchboard CMD [WORD] --help` exits 0 for each distinct command shown: argparse
    refuses an unknown command or subcommand (exit 2), and for a command without
    subcommands WORD is only an argument that --help ignores."""
    commands = documented_commands()
    assert ("simulate",) in commands, "no `switchboard simulate` found: is the parser broken?"
    keys = sorted(commands)
    runs = in_parallel([list(key) if key[0].startswith("-") else [*key, "--help"] for key in keys])
    problems = [
        f"{commands[key].where()}: `switchboard {' '.join(key)}` does not exist:\n"
        f"{done.stderr.strip()}"
        for key, done in zip(keys, runs, strict=True)
        if done.returncode != 0
    ]
    assert not problems, "\n".join(problems)


# --- outputs shown -------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    line: Line
    command: str
    output: str


def shown_outputs() -> list[Shown]:
    """Each ``$ switchboard simulate ...`` line of a code block with the lines after it
    (up to the next ``$`` line): the command and what the page says it prints.  Also
    ``$ switchboard check FILE...`` when every FILE is in the repository (the tutorial's
    steps aside: `test_tutorial_step_passes_check` runs those)."""
    found = []
    for page in CHECKED:
        for block in code_blocks(page):
            for i, line in enumerate(block):
                if not line.text.startswith("$ switchboard "):
                    continue
                command = line.text[2:]
                words = command.split()
                if words[1] == "check":
                    files = [w for w in words[2:] if not w.startswith("-")]
                    if not files or not all((ROOT / f).is_file() for f in files):
                        continue
                    if all((ROOT / f).resolve() in STEPS for f in files):
                        continue
                elif words[1] != "simulate":
                    continue
                output = []
                for after in block[i + 1 :]:
                    if after.text.startswith("$ "):
                        break
                    output.append(after.text)
                found.append(Shown(line, command, "\n".join(output)))
    return found


def test_shown_outputs_are_what_the_cli_prints(shim: Path) -> None:
    shown = shown_outputs()
    assert len(shown) >= 10, "the tutorial's simulate outputs were not found"
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda s: cli(shell=s.command, shim=shim), shown))
    problems = []
    for item, done in zip(shown, results, strict=True):
        printed = (done.stdout + done.stderr).rstrip("\n")
        if printed != item.output:
            problems.append(
                f"{item.line.where()}: `{item.command}` prints (run it and paste; give "
                f"simulate an --at so that it prints the same each time):\n{printed}\n"
            )
    assert not problems, "\n".join(problems)


def test_the_broken_copy_in_getting_started_fails_as_shown(tmp_path: Path) -> None:
    """getting-started.md breaks the tutorial's step 1 in two places and shows `check`."""
    page = DOCS / "getting-started.md"
    block = next(b for b in code_blocks(page) if b[0].text == "$ switchboard check broken.yaml")
    lines = [line.text for line in block[1:]]
    shown = lines[: lines.index("$ echo $?")]
    text = (DOCS / "tutorial" / "step1.yaml").read_text(encoding="utf-8")
    broken = text.replace("ring_timeout:", "ring_timout:").replace(
        "noanswer: goodbye", "noanswer: good_bye"
    )
    (tmp_path / "broken.yaml").write_text(broken, encoding="utf-8")
    done = cli("check", "broken.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout.splitlines() == shown


# --- links ---------------------------------------------------------------------------


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings."""
    seen: dict[str, int] = {}
    out = set()
    in_code = False
    for text in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(text):
            in_code = not in_code
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", text)
        if in_code or heading is None:
            continue
        title = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1)).lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def test_links_between_pages_resolve() -> None:
    problems = []
    checked = 0
    for page in CHECKED:
        in_code = False
        for number, text in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if FENCE.match(text):
                in_code = not in_code
            if in_code:
                continue
            for target in LINK.findall(text):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # https:, mailto: ...
                checked += 1
                where = f"{page.relative_to(ROOT)}:{number}"
                path_part, _, anchor = target.partition("#")
                resolved = (page.parent / path_part).resolve() if path_part else page
                if not resolved.is_relative_to(ROOT):
                    problems.append(f"{where}: {target} leaves the repository")
                elif not resolved.exists():
                    problems.append(f"{where}: {target} does not exist")
                elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                    problems.append(f"{where}: {target}: no heading with that anchor")
    assert checked > 20, "no links found: is the link pattern broken?"
    assert not problems, "\n".join(problems)


# --- the front page ------------------------------------------------------------------

DEMO = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[demo]' -e ./sim "
    "&& .venv/bin/switchboard demo"
)


def links(page: Path) -> set[Path]:
    """The files a page links to (outside code blocks), resolved."""
    found: set[Path] = set()
    in_code = False
    for text in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(text):
            in_code = not in_code
        if in_code:
            continue
        for target in LINK.findall(text):
            path_part = target.partition("#")[0]
            if path_part and not re.match(r"^[a-z][a-z0-9+.-]*:", target):
                found.add((page.parent / path_part).resolve())
    return found


def test_the_readme_is_a_short_front_page() -> None:
    size = len(FRONT.read_bytes())
    assert size < 10_000, f"README.md is {size} bytes: move the detail into docs/"


def test_the_readme_starts_with_the_demo_and_the_test_command() -> None:
    blocks = [[line.text for line in block] for block in code_blocks(FRONT)]
    assert blocks[:2] == [[DEMO], ["scripts/test"]], blocks[:2]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "exec scripts/test" in ci, "the README's test command is no longer what CI runs"


def test_the_readme_links_every_docs_page() -> None:
    linked = links(FRONT)
    missing = [page.name for page in PAGES if page.resolve() not in linked]
    assert not missing, f"README.md links no {', '.join(missing)}"


# --- the configuration reference -----------------------------------------------------


def models_in(annotation: object) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation mentions (through unions, Annotated, containers)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from models_in(argument)


def config_models() -> dict[type[BaseModel], None]:
    found: dict[type[BaseModel], None] = {}
    todo: list[type[BaseModel]] = [model.Config]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found[current] = None
        for field in current.model_fields.values():
            todo.extend(models_in(field.annotation))
    return found


def test_the_model_walk_reaches_every_node_type() -> None:
    walked = config_models()
    nodes = set(models_in(model.Node))
    assert len(nodes) == len(model.NODE_TYPES)
    assert nodes <= walked.keys()
    assert {model.SwitchCase, model.HttpSource, model.Endpoints, model.Limits} <= walked.keys()


def test_configuration_reference_names_every_field() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    named = set(re.findall(r"`(?:[a-z_]+\.)*([a-z_]+)`", text))  # `key` or `section.key`
    missing = [
        f"{cls.__name__}.{name}"
        for cls in config_models()
        for name in cls.model_fields
        if name not in named
    ]
    assert not missing, f"docs/configuration.md does not name: {', '.join(missing)}"


def test_configuration_reference_has_a_section_per_node_type() -> None:
    headings = set(re.findall(r"^### (\S+)$", REFERENCE.read_text(encoding="utf-8"), re.M))
    assert set(model.NODE_TYPES) <= headings, set(model.NODE_TYPES) - headings
