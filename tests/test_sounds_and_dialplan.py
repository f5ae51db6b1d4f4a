"""The committed prompts (sounds/) and Asterisk snippets (dialplan/).

These tests read the files as they are in the repository; they need neither
espeak-ng nor sox (scripts/make-sounds --check is the test of the generator).
"""

from __future__ import annotations

import array
import itertools
import re
import sys
import wave
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agi_server.app import SERVICES
from ari_app.agent_codes import AGENT_ARG
from switchboard.acd.phone import UNKNOWN_PROMPT, parse_action
from switchboard.config.model import AsteriskSection
from switchboard.prompts import BUILTIN_PROMPTS

ROOT = Path(__file__).resolve().parent.parent
SOUNDS = ROOT / "sounds"
DIALPLAN = ROOT / "dialplan"
LANGUAGES = ("en", "ru")
EXTRA_PROMPTS: tuple[str, ...] = ()  # recordings beyond the built-in prompts
PROMPT_NAMES = sorted([*BUILTIN_PROMPTS, *EXTRA_PROMPTS])
RECORDINGS = [(lang, name) for lang in LANGUAGES for name in PROMPT_NAMES]
PLACEHOLDER = "change-me"


def recording(lang: str, name: str) -> Path:
    return SOUNDS / lang / "switchboard" / f"{name}.wav"


def read_tsv(path: Path) -> list[dict[str, str]]:
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    columns = header.split("\t")
    table = []
    for row in rows:
        if not row or row.startswith("#"):
            continue
        cells = row.split("\t")
        assert len(cells) == len(columns), f"{path.name}: {row!r}"
        table.append(dict(zip(columns, cells, strict=True)))
    return table


# --- sounds/ -----------------------------------------------------------------


@pytest.mark.parametrize(("lang", "name"), RECORDINGS)
def test_every_prompt_has_a_recording_in_english_and_russian(lang: str, name: str) -> None:
    assert recording(lang, name).is_file()


@pytest.mark.parametrize(("lang", "name"), RECORDINGS)
def test_every_recording_plays_natively_in_asterisk_8khz_16bit_mono(lang: str, name: str) -> None:
    with wave.open(str(recording(lang, name)), "rb") as wav:
        assert wav.getframerate() == 8000
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getcomptype() == "NONE"
        seconds = wav.getnframes() / wav.getframerate()
    assert 0.2 < seconds < 15


@pytest.mark.parametrize(("lang", "name"), RECORDINGS)
def test_no_recording_is_silent(lang: str, name: str) -> None:
    with wave.open(str(recording(lang, name)), "rb") as wav:
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    assert max(abs(s) for s in samples) > 8000  # louder than -12 dBFS somewhere


def test_no_stale_recording_is_left_without_a_text() -> None:
    texts = {(row["language"], row["name"]) for row in read_tsv(SOUNDS / "prompts.tsv")}
    files = {(p.parent.parent.name, p.stem) for p in SOUNDS.glob("*/switchboard/*.wav")}
    assert files == texts


def test_english_texts_in_prompts_tsv_are_the_builtin_prompt_texts() -> None:
    english = {
        row["name"]: row["text"]
        for row in read_tsv(SOUNDS / "prompts.tsv")
        if row["language"] == "en"
    }
    for name, (_, text) in BUILTIN_PROMPTS.items():
        assert english[name] == text, name


def test_every_prompt_has_exactly_one_text_per_language() -> None:
    rows = read_tsv(SOUNDS / "prompts.tsv")
    keys = [(row["name"], row["language"]) for row in rows]
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted((name, lang) for lang, name in RECORDINGS)
    russian = [row["text"] for row in rows if row["language"] == "ru"]
    assert all(re.search("[\u0400-\u04ff]", text) for text in russian)


def test_durations_tsv_gives_each_recordings_length() -> None:
    rows = read_tsv(SOUNDS / "durations.tsv")
    assert {(row["language"], row["name"]) for row in rows} == set(RECORDINGS)
    for row in rows:
        with wave.open(str(recording(row["language"], row["name"])), "rb") as wav:
            seconds = wav.getnframes() / wav.getframerate()
        assert float(row["seconds"]) == pytest.approx(seconds, abs=0.006), row


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_beep_is_a_half_second_1khz_tone(lang: str) -> None:
    with wave.open(str(recording(lang, "beep")), "rb") as wav:
        rate = wav.getframerate()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    seconds = len(samples) / rate
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    assert seconds == pytest.approx(0.5, abs=0.05)
    assert crossings / 2 / seconds == pytest.approx(1000, rel=0.02)


def test_the_recordings_stay_small_enough_to_keep_in_the_repository() -> None:
    total = sum(p.stat().st_size for p in SOUNDS.rglob("*") if p.is_file())
    assert total < 3_000_000


# --- dialplan/ ---------------------------------------------------------------


@dataclass
class Step:
    line: int
    label: str | None
    app: str
    args: str


@dataclass
class Extension:
    pattern: str
    steps: list[Step] = field(default_factory=list)


EXTEN_LINE = re.compile(r"exten\s*=>\s*([^,]+),1(?:\(([\w-]+)\))?,(\w+)\((.*)\)")
SAME_LINE = re.compile(r"same\s*=>\s*n(?:\(([\w-]+)\))?,(\w+)\((.*)\)")


def strip_comment(line: str) -> str:
    return re.sub(r"(?<!\\);.*", "", line).strip()


def read_dialplan() -> dict[str, list[Extension]]:
    """Contexts of extensions-switchboard.conf; fails on a line it cannot read."""
    path = DIALPLAN / "extensions-switchboard.conf"
    contexts: dict[str, list[Extension]] = {}
    current: list[Extension] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = strip_comment(raw)
        where = f"{path.name}:{number}: {raw.strip()}"
        if not line:
            continue
        if header := re.fullmatch(r"\[([\w-]+)\]", line):
            assert header[1] not in contexts, f"{where}: context defined twice"
            current = contexts[header[1]] = []
        elif exten := EXTEN_LINE.fullmatch(line):
            assert current is not None, f"{where}: extension outside a context"
            current.append(Extension(exten[1].strip()))
            current[-1].steps.append(Step(number, exten[2], exten[3], exten[4]))
        elif same := SAME_LINE.fullmatch(line):
            assert current, f"{where}: `same =>` before any `exten =>`"
            current[-1].steps.append(Step(number, same[1], same[2], same[3]))
        else:
            pytest.fail(f"{where}: not a context, `exten => X,1,App(...)` or `same => n,...`")
    return contexts


def inbound_contexts(contexts: dict[str, list[Extension]]) -> dict[str, list[Extension]]:
    return {name: exts for name, exts in contexts.items() if name.startswith("switchboard-inbound")}


def goto_destinations(step: Step) -> list[list[str]]:
    """The [[context,]exten,]priority destinations of a Goto or GotoIf."""
    if step.app == "Goto":
        targets = [step.args]
    elif step.app == "GotoIf":
        targets = step.args.rsplit("?", 1)[1].split(":")
    else:
        return []
    return [target.split(",") for target in targets if target]


def balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1, "[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_inbound_contexts_exist_for_a_sip_trunk_e1_and_analog_lines() -> None:
    assert set(inbound_contexts(read_dialplan())) == {
        "switchboard-inbound-sip",
        "switchboard-inbound-e1",
        "switchboard-inbound-analog",
    }


def test_every_inbound_call_is_handed_to_the_switchboard_stasis_app() -> None:
    app = AsteriskSection().app
    for name, extensions in inbound_contexts(read_dialplan()).items():
        assert extensions, name
        for exten in extensions:
            stasis = [s for s in exten.steps if s.app == "Stasis"]
            assert len(stasis) == 1, (name, exten.pattern)
            assert stasis[0].args.split(",")[0] == app, (name, exten.pattern)


def test_analog_lines_start_in_the_s_extension() -> None:
    analog = read_dialplan()["switchboard-inbound-analog"]
    assert [exten.pattern for exten in analog] == ["s"]


def test_every_inbound_call_is_still_served_when_the_stasis_app_is_not_connected() -> None:
    contexts = read_dialplan()
    fallback = AsteriskSection().fallback_context
    for name, extensions in inbound_contexts(contexts).items():
        for exten in extensions:
            apps = [s.app for s in exten.steps]
            after = exten.steps[apps.index("Stasis") + 1 :]
            checks = [
                s
                for s in after
                if s.app == "GotoIf"
                and re.match(r'\$\[\s*"\$\{STASISSTATUS\}"\s*=\s*"FAILED"\s*\]\?', s.args)
            ]
            assert checks, f"{name} {exten.pattern}: no STASISSTATUS = FAILED check"
            target = goto_destinations(checks[0])[0]
            assert target[0] == fallback, (name, exten.pattern)
            assert exten.steps[-1].app == "Hangup", (name, exten.pattern)


def test_the_fallback_context_rings_people_then_takes_a_voicemail() -> None:
    fallback = read_dialplan()[AsteriskSection().fallback_context]
    patterns = {exten.pattern for exten in fallback}
    assert {"s", "_X.", "i"} <= patterns  # any extension Switchboard may send it to
    (start,) = (exten for exten in fallback if exten.pattern == "s")
    apps = [s.app for s in start.steps]
    assert "Dial" in apps
    assert "Queue" in apps
    assert "VoiceMail" in apps
    assert apps.index("Dial") < apps.index("VoiceMail")
    assert apps.index("Queue") < apps.index("VoiceMail")


def fallback_language(variables: dict[str, str], channel_language: str) -> str:
    """The channel's language once switchboard-fallback's `s` has run its language line,
    for a call carrying ``variables``: the steps that set CHANNEL(language), read as
    Asterisk would (``${VAR}`` substituted, ``ExecIf($["a" op "b"]?App(args))``)."""
    (start,) = (e for e in read_dialplan()[AsteriskSection().fallback_context] if e.pattern == "s")

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m[1], ""), text)

    language = channel_language
    for step in start.steps:
        app, args = step.app, step.args
        if app == "ExecIf":
            condition, _, action = args.partition("?")
            test = re.fullmatch(r'\$\[\s*"([^"]*)"\s*(!=|=)\s*"([^"]*)"\s*\]', expand(condition))
            assert test, f"line {step.line}: a condition this test cannot read"
            if (test[1] == test[3]) != (test[2] == "="):
                continue
            call = re.fullmatch(r"(\w+)\((.*)\)", action)
            assert call, f"line {step.line}"
            app, args = call[1], call[2]
        if app == "Set" and args.startswith("CHANNEL(language)="):
            language = expand(args.partition("=")[2])
    return language


@pytest.mark.parametrize(
    ("variables", "channel", "heard"),
    [
        ({}, "en", "en"),  # Asterisk's default language: English, as the examples
        ({}, "ru", "ru"),  # the endpoint's `language = ru`
        ({"SWITCHBOARD_LANGUAGE": "ru"}, "en", "ru"),  # set for this number, or a global
        ({"SWITCHBOARD_LANGUAGE": "en"}, "ru", "en"),
    ],
)
def test_the_fallback_speaks_the_calls_language_not_a_fixed_one(
    variables: dict[str, str], channel: str, heard: str
) -> None:
    assert fallback_language(variables, channel) == heard


@pytest.mark.parametrize("conf", ["extensions-switchboard.conf", "extensions-switchboard-agi.conf"])
def test_no_dialplan_line_fixes_the_language(conf: str) -> None:
    for raw in (DIALPLAN / conf).read_text(encoding="utf-8").splitlines():
        line = strip_comment(raw)
        assert not re.search(r"CHANNEL\(language\)=(?!\$\{)", line), raw


def test_every_goto_in_the_dialplan_leads_somewhere_that_exists() -> None:
    contexts = read_dialplan()
    for context, extensions in contexts.items():
        for exten in extensions:
            for step in exten.steps:
                for dest in goto_destinations(step):
                    *where, priority = dest
                    target_context = where[0] if len(where) == 2 else context
                    assert target_context in contexts, f"line {step.line}: {dest}"
                    target_exten = where[-1] if where else exten.pattern
                    if "${" in target_exten:
                        continue
                    (target,) = (e for e in contexts[target_context] if e.pattern == target_exten)
                    if not priority.isdigit():
                        labels = {s.label for s in target.steps}
                        assert priority in labels, f"line {step.line}: no label {priority}"
                    else:
                        assert int(priority) <= len(target.steps), f"line {step.line}"


def test_every_dialplan_line_has_balanced_brackets() -> None:
    for extensions in read_dialplan().values():
        for exten in extensions:
            for step in exten.steps:
                assert balanced(step.args), f"line {step.line}: {step.args}"
                assert step.args.count('"') % 2 == 0, f"line {step.line}: {step.args}"


def test_every_sound_the_dialplan_plays_is_one_of_the_projects_recordings() -> None:
    played = [
        step.args
        for extensions in read_dialplan().values()
        for exten in extensions
        for step in exten.steps
        if step.app in {"Playback", "Background"}
    ]
    assert played
    for sound in played:
        assert sound.startswith("switchboard/"), sound
        for lang in LANGUAGES:
            assert recording(lang, sound.removeprefix("switchboard/")).is_file(), sound


def test_every_fastagi_context_falls_back_when_the_server_is_unreachable() -> None:
    lines = _agi_dialplan_lines()
    contexts = {ctx for ctx, line in lines if "AGI(agi://" in line}
    assert contexts >= {
        "switchboard-agi-scenario", "switchboard-agi-route",
        "switchboard-agi-schedule", "switchboard-agi-icm",
    }  # fmt: skip
    for context in ("switchboard-agi-scenario", "switchboard-agi-route"):
        body = [line for ctx, line in lines if ctx == context]
        assert any('"${AGISTATUS}" = "FAILURE"]?switchboard-fallback' in line for line in body)


def test_the_fastagi_examples_ask_only_for_services_the_server_offers() -> None:
    urls = [
        line.split("AGI(agi://", 1)[1] for _, line in _agi_dialplan_lines() if "AGI(agi://" in line
    ]
    assert urls
    for url in urls:
        address, _, rest = url.partition("/")
        assert address == "127.0.0.1:4573", url  # the server's default: loopback
        service = rest.split("?", 1)[0].split(",", 1)[0].rstrip(")")
        assert service in SERVICES, url


FEATURE_CODES = {"*71": "login", "*72": "logout", "*73": "toggle"}


def test_agents_feature_codes_go_to_the_stasis_app_with_their_action() -> None:
    contexts = read_dialplan()
    codes = {e.pattern: e for e in contexts["switchboard-agent-codes"] if e.pattern.startswith("*")}
    assert set(codes) == set(FEATURE_CODES)
    app = AsteriskSection().app
    for pattern, action in FEATURE_CODES.items():
        steps = codes[pattern].steps
        (stasis,) = (s for s in steps if s.app == "Stasis")
        assert stasis.args.split(",") == [app, AGENT_ARG, action], pattern
        assert parse_action(action) == action
        after = steps[steps.index(stasis) + 1 :]
        assert any(s.app == "GotoIf" and '"${STASISSTATUS}" = "FAILED"' in s.args for s in after), (
            pattern
        )
        assert steps[-1].app == "Hangup", pattern
    # the runtime tells what each code did with these recordings
    for prompt in ("agent-logged-in", "agent-logged-out", "agent-paused", "agent-resumed",
                   UNKNOWN_PROMPT):  # fmt: skip
        assert prompt in BUILTIN_PROMPTS
        for lang in LANGUAGES:
            assert recording(lang, prompt).is_file()


def test_agents_feature_codes_over_fastagi_ask_the_agent_service() -> None:
    lines = [line for ctx, line in _agi_dialplan_lines() if ctx == "switchboard-agi-agent-codes"]
    asked = {}
    for line in lines:
        if found := re.match(
            r"exten\s*=>\s*(\*\d+),1,AGI\(agi://[^/]+/agent\?action=(\w+)\)", line
        ):
            asked[found[1]] = found[2]
    assert asked == FEATURE_CODES
    assert sum('"${AGISTATUS}" = "FAILURE"]?failed,1' in line for line in lines) == 3
    assert "agent" in SERVICES


def _agi_dialplan_lines() -> list[tuple[str, str]]:
    """(context, line) of every non-comment line of extensions-switchboard-agi.conf."""
    context = ""
    out = []
    for raw in (DIALPLAN / "extensions-switchboard-agi.conf").read_text("utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            context = line[1:-1]
        elif line:
            out.append((context, line))
    return out


def read_conf(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of an Asterisk .conf file, comments stripped."""
    entries = []
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = strip_comment(raw)
        if not line:
            continue
        if header := re.fullmatch(r"\[([\w-]+)\]", line):
            section = header[1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {raw!r}"
        entries.append((section, key.strip(), value.lstrip(">").strip()))
    return entries


def test_asterisk_http_server_listens_on_loopback_only() -> None:
    general = {k: v for s, k, v in read_conf(DIALPLAN / "http.conf") if s == "general"}
    assert general["enabled"] == "yes"
    assert general["bindaddr"] == "127.0.0.1"
    assert general["bindport"] == "8088"
    assert AsteriskSection().ari_url == "http://127.0.0.1:8088"


def test_ari_is_enabled_for_the_switchboard_user_and_open_to_no_other_origin() -> None:
    entries = read_conf(DIALPLAN / "ari.conf")
    general = {k: v for s, k, v in entries if s == "general"}
    user = {k: v for s, k, v in entries if s == AsteriskSection().ari_user}
    assert general["enabled"] == "yes"
    assert "allowed_origins" not in general
    assert user["type"] == "user"
    assert ("password_format", "plain") in user.items()


@pytest.mark.parametrize("conf", ["ari.conf", "pjsip-trunk-example.conf"])
def test_example_configs_hold_no_password_but_the_placeholder(conf: str) -> None:
    secrets = [v for _, k, v in read_conf(DIALPLAN / conf) if k in {"password", "secret"}]
    assert secrets
    assert set(secrets) == {PLACEHOLDER}


def test_the_pjsip_trunk_example_sends_inbound_calls_to_switchboard() -> None:
    entries = read_conf(DIALPLAN / "pjsip-trunk-example.conf")
    contexts = {v for _, k, v in entries if k == "context"}
    assert contexts == {"switchboard-inbound-sip"}
    assert contexts <= set(read_dialplan())
    assert "trunk" in AsteriskSection().endpoints.mobile  # PJSIP/{number}@trunk
    assert ("trunk", "type", "endpoint") in entries
