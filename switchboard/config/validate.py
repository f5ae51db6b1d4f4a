"""Checks that look across the whole file, and the `Company` snapshot they produce.

`pydantic` has already checked each object's shape.  Here: references between
objects, duplicates, schedules and templates, node exits, reachability
(warnings), `callback` nodes that cannot know their department and loops that
would spin without waiting for anybody (errors).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import deque
from collections.abc import Iterator
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from switchboard.config.company import CaseMatcher, Company, TargetKind
from switchboard.config.model import (
    AssignNode,
    CallbackNode,
    Config,
    DialNode,
    DialplanNode,
    GotoNode,
    HangupNode,
    HttpSource,
    IcmNode,
    MenuNode,
    Node,
    NotifyNode,
    PlayNode,
    QueueNode,
    ScheduleNode,
    SwitchNode,
    VoicemailNode,
    Whisper,
)
from switchboard.config.problems import Problem
from switchboard.config.yaml_source import Path
from switchboard.numbering import NumberingPlan, is_phone_number, normalize
from switchboard.prompts import is_known_prompt
from switchboard.schedule import CompiledSchedule, compile_schedule, parse_time
from switchboard.templates import (
    TemplateError,
    json_value,
    parse_json_template,
    parse_template,
)

NodeKey = tuple[str, str]  # (scenario, node)


# an e-mail address, as far as a mistake can be told ("Name <a@b>" or a@b)
_EMAIL = re.compile(r"^(?:[^<>\r\n]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$")
_KEYS = "0123456789*#ABCD"  # what a phone's keypad sends (DTMF)
# an HTTP header name (RFC 9110 5.1: a token); those the HTTP client sets are not ours
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADERS_SET_BY_US = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class _Checker:
    def __init__(self, config: Config, invalid: set[Path]) -> None:
        self.config = config
        self.problems: list[Problem] = []
        # objects that failed their schema and were left out: references to them are fine
        self.invalid = invalid
        c = config.numbering
        self.plan = NumberingPlan(
            country_code=c.country_code,
            city_code=c.city_code,
            national_prefix=c.national_prefix,
            international_prefix=c.international_prefix,
            national_length=c.national_length,
        )
        # names of the set-aside objects, by where they live: "employees", "nodes:main", ...
        self.invalid_names: dict[str, set[str]] = {}
        for p in invalid:
            if len(p) == 2:
                self.invalid_names.setdefault(str(p[0]), set()).add(str(p[1]))
            elif len(p) == 4 and p[0] == "scenarios" and p[2] == "nodes":
                self.invalid_names.setdefault(f"nodes:{p[1]}", set()).add(str(p[3]))

    def error(self, path: Path, message: str) -> None:
        self.problems.append(Problem(path, message))

    def warning(self, path: Path, message: str) -> None:
        self.problems.append(Problem(path, message, "warning"))

    def missing(self, name: str, *among: str) -> bool:
        """A reference to ``name`` that is neither valid nor a schema-rejected object."""
        return not any(name in self.invalid_names.get(where, ()) for where in among)

    # --- sections -----------------------------------------------------------------

    def run(self) -> Company:
        cfg = self.config
        try:
            tz = ZoneInfo(cfg.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.error(("timezone",), f"unknown timezone {cfg.timezone!r} (e.g. Europe/Moscow)")
            tz = ZoneInfo("UTC")

        extensions: dict[str, tuple[TargetKind, str]] = {}
        employees = {}
        for i, emp in enumerate(cfg.employees):
            if emp.id in employees:
                self.error(("employees", i, "id"), f"duplicate employee id {emp.id!r}")
            employees[emp.id] = emp
            if emp.extension is not None:
                self._extension(extensions, emp.extension, ("employee", emp.id), ("employees", i))
            if emp.mobile is not None and not is_phone_number(emp.mobile):
                self.error(("employees", i, "mobile"), f"{emp.mobile!r} is not a phone number")
            if emp.forward_to_mobile_after is not None and emp.mobile is None:
                self.error(
                    ("employees", i, "forward_to_mobile_after"),
                    "forward_to_mobile_after is set but the employee has no `mobile`",
                )

        departments = {}
        for i, dep in enumerate(cfg.departments):
            if dep.id in departments:
                self.error(("departments", i, "id"), f"duplicate department id {dep.id!r}")
            if dep.id in employees:
                self.error(("departments", i, "id"), f"{dep.id!r} is an employee id too")
            departments[dep.id] = dep
            if dep.extension is not None:
                self._extension(
                    extensions, dep.extension, ("department", dep.id), ("departments", i)
                )
            seen: set[str] = set()
            for j, member in enumerate(dep.members):
                if member in seen:
                    self.error(("departments", i, "members", j), f"{member!r} is listed twice")
                seen.add(member)
                if member not in employees and self.missing(member, "employees"):
                    self.error(("departments", i, "members", j), f"unknown employee {member!r}")
            for member in dep.penalties:
                if member not in seen:
                    self.error(
                        ("departments", i, "penalties", member),
                        f"penalty for {member!r}, who is not a member of {dep.id!r}",
                    )
            if dep.schedule is not None and dep.schedule not in cfg.schedules:
                self._unknown(("departments", i, "schedule"), "schedule", dep.schedule, "schedules")
            if not dep.members:
                self.warning(("departments", i), f"department {dep.id!r} has no members")

        schedules: dict[str, CompiledSchedule] = {}
        for name, schedule in cfg.schedules.items():
            compiled, errors = compile_schedule(schedule)
            for err in errors:
                self.error(("schedules", name, *err.where), err.message)
            schedules[name] = compiled

        numbers: dict[str, str] = {}
        lines: dict[int, str] = {}
        line_numbers: dict[int, str] = {}
        for i, entry in enumerate(cfg.numbers):
            if entry.scenario not in cfg.scenarios:
                self._unknown(("numbers", i, "scenario"), "scenario", entry.scenario, "scenarios")
            if entry.line is not None:
                if entry.line in lines:
                    self.error(("numbers", i, "line"), f"line {entry.line} is listed twice")
                lines[entry.line] = entry.scenario
                if entry.number is not None:
                    line_numbers[entry.line] = normalize(entry.number, self.plan)
            elif entry.number is not None:
                canonical = normalize(entry.number, self.plan)
                if canonical in numbers:
                    self.error(
                        ("numbers", i, "number"),
                        f"number {entry.number!r} ({canonical}) is listed twice",
                    )
                numbers[canonical] = entry.scenario
        if cfg.default_scenario is not None and cfg.default_scenario not in cfg.scenarios:
            self._unknown(("default_scenario",), "scenario", cfg.default_scenario, "scenarios")

        contacts: dict[str, str] = {}
        for caller, employee in cfg.contacts.items():
            if employee not in employees and self.missing(employee, "employees"):
                self.error(("contacts", caller), f"unknown employee {employee!r}")
            contacts[normalize(caller, self.plan)] = employee
        vip = {normalize(caller, self.plan): priority for caller, priority in cfg.vip.items()}
        caller_routes: dict[str, tuple[str, str | None]] = {}
        for i, route in enumerate(cfg.callers):
            scenario = cfg.scenarios.get(route.scenario)
            if scenario is None:
                self._unknown(("callers", i, "scenario"), "scenario", route.scenario, "scenarios")
            elif route.node is not None and route.node not in scenario.nodes:
                self.error(
                    ("callers", i, "node"),
                    f"scenario {route.scenario!r} has no node {route.node!r}",
                )
            key = normalize(route.caller, self.plan)
            if key in caller_routes:
                self.error(("callers", i, "caller"), f"caller {route.caller!r} is listed twice")
            caller_routes[key] = (route.scenario, route.node)

        bounds = self._greeting()
        self.company = Company(
            config=cfg,
            source="",
            plan=self.plan,
            tz=tz,
            employees=employees,
            departments=departments,
            extensions=extensions,
            schedules=schedules,
            numbers=numbers,
            lines=lines,
            line_numbers=line_numbers,
            contacts=contacts,
            vip=vip,
            caller_routes=caller_routes,
            switch_cases={},
            greeting_bounds=bounds,
            prompt_seconds={name: p.duration for name, p in cfg.prompts.items()},
        )
        for scenario_name, scenario in cfg.scenarios.items():
            base: Path = ("scenarios", scenario_name)
            if scenario.start not in scenario.nodes and self.missing(
                scenario.start, f"nodes:{scenario_name}"
            ):
                self.error((*base, "start"), f"start node {scenario.start!r} does not exist")
            for node_name, node in scenario.nodes.items():
                self._node(scenario_name, node_name, node)
        self._reachability()
        self._callback_departments()
        self._loops()
        self._webhooks()
        self._mail()
        self._rung_phones()
        self._recording()
        return self.company

    def _recording(self) -> None:
        """The notice is prompts; the on-demand key is keys a phone can send."""
        recording = self.config.recording
        if recording.notice:
            self._prompts(("recording", "notice"), list(recording.notice))
        key = recording.on_demand_key
        if not 1 <= len(key) <= 4 or any(k not in _KEYS for k in key):
            self.error(("recording", "on_demand_key"), f"{key!r}: 1 to 4 keys, 0-9, * or #")

    def _rung_phones(self) -> None:
        """The names rung phones show are templates of the call's values; a whisper's
        prompts are prompts, its refuse key one key."""
        for i, dep in enumerate(self.config.departments):
            if dep.caller_id_name is not None:
                self._template(("departments", i, "caller_id_name"), dep.caller_id_name)
            if dep.whisper is not None:
                self._whisper(("departments", i, "whisper"), dep.whisper)
        for scenario_name, scenario in self.config.scenarios.items():
            for node_name, node in scenario.nodes.items():
                path: Path = ("scenarios", scenario_name, "nodes", node_name)
                template = getattr(node, "caller_id_name", None)
                if template is not None:
                    self._template((*path, "caller_id_name"), template)
                whisper = getattr(node, "whisper", None)
                if whisper is not None:
                    self._whisper((*path, "whisper"), whisper)

    def _whisper(self, path: Path, whisper: Whisper) -> None:
        self._prompts((*path, "prompts"), list(whisper.prompts))
        key = whisper.refuse_key
        if key is not None and (len(key) != 1 or key not in _KEYS):
            self.error((*path, "refuse_key"), f"{key!r}: one key, 0-9, * or #")

    def _mail(self) -> None:
        """Addresses look like addresses; the SMTP password may read the environment."""
        mail = self.config.mail
        if mail.password is not None:
            self._env_only(("mail", "password"), mail.password)
        addresses: list[tuple[Path, str | None]] = [
            (("mail", "sender"), mail.sender),
            (("mail", "messages_to"), mail.messages_to),
        ]
        addresses += [
            (("employees", i, "email"), e.email) for i, e in enumerate(self.config.employees)
        ]
        addresses += [
            (("departments", i, "email"), d.email) for i, d in enumerate(self.config.departments)
        ]
        for path, address in addresses:
            if address is not None and not _EMAIL.match(address):
                self.error(path, f"{address!r} is not an e-mail address")

    def _webhooks(self) -> None:
        """Each target: an http(s) URL; its URL and secret may read the environment."""
        for i, hook in enumerate(self.config.webhooks):
            path: Path = ("webhooks", i)
            self._env_only((*path, "url"), hook.url)
            if hook.secret is not None:
                self._env_only((*path, "secret"), hook.secret)
            scheme = hook.url.partition("://")[0].lower()
            if "://" not in hook.url or scheme not in ("http", "https"):
                self.error((*path, "url"), "use http:// or https://")
            if not hook.events:
                self.error((*path, "events"), "no event: ringing, answered or ended")

    def _extension(
        self,
        extensions: dict[str, tuple[TargetKind, str]],
        ext: str,
        owner: tuple[TargetKind, str],
        path: Path,
    ) -> None:
        if not ext.isdigit():
            self.error((*path, "extension"), f"extension {ext!r} must be digits")
        if ext in extensions:
            kind, other = extensions[ext]
            self.error(
                (*path, "extension"), f"extension {ext} is already taken by {kind} {other!r}"
            )
        else:
            extensions[ext] = owner

    def _greeting(self) -> tuple[int, int]:
        g = self.config.greeting
        try:
            morning = parse_time(g.morning_until)
        except ValueError as exc:
            self.error(("greeting", "morning_until"), str(exc))
            morning = 11 * 60
        try:
            day = parse_time(g.day_until)
        except ValueError as exc:
            self.error(("greeting", "day_until"), str(exc))
            day = 17 * 60
        if day <= morning:
            self.error(("greeting", "day_until"), "day_until must be later than morning_until")
        return morning, day

    def _unknown(self, path: Path, kind: str, name: str, *among: str) -> None:
        if self.missing(name, *among):
            self.error(path, f"unknown {kind} {name!r}")

    # --- nodes --------------------------------------------------------------------

    def _node(self, scenario: str, name: str, node: Node) -> None:
        path: Path = ("scenarios", scenario, "nodes", name)
        nodes = self.config.scenarios[scenario].nodes
        for exit_name, target in node.exits().items():
            if target not in nodes and self.missing(target, f"nodes:{scenario}"):
                field = _exit_field(node, exit_name)
                self.error((*path, *field), f"exit {exit_name!r} points to unknown node {target!r}")
        cfg = self.config
        match node:
            case AssignNode():
                self._template((*path, "value"), node.value)
            case SwitchNode():
                self._template((*path, "value"), node.value)
                self._switch(scenario, name, node, path)
            case NotifyNode():
                self._template((*path, "message"), node.message)
            case PlayNode():
                self._prompts((*path, "prompt"), node.prompt)
            case MenuNode():
                self._prompts((*path, "prompt"), node.prompt)
                if node.invalid_prompt is not None:
                    self._prompts((*path, "invalid_prompt"), node.invalid_prompt)
                if node.max_digits is not None:
                    for key in node.options:
                        if len(key) > node.max_digits:
                            self.error(
                                (*path, "options", key),
                                f"option {key!r} is longer than max_digits={node.max_digits}",
                            )
                if node.extension_dialing and not self.company.extensions:
                    self.warning(
                        (*path, "extension_dialing"), "no employee or department has an extension"
                    )
            case ScheduleNode():
                if node.schedule not in cfg.schedules:
                    self._unknown((*path, "schedule"), "schedule", node.schedule, "schedules")
                else:
                    breaks = cfg.schedules[node.schedule].breaks
                    for extra, target in node.break_exits.items():
                        if extra not in breaks:
                            known = ", ".join(sorted(breaks)) or "none"
                            self.error(
                                (*path, extra),
                                f"unknown key {extra!r} (not a break of schedule "
                                f"{node.schedule!r}; its breaks: {known})",
                            )
                        elif not isinstance(target, str):
                            self.error((*path, extra), "a break exit must name a node")
            case DialNode():
                if self.company.resolve_target(node.target) is None:
                    self._unknown(
                        (*path, "target"),
                        "employee or department",
                        node.target,
                        "employees",
                        "departments",
                    )
            case QueueNode():
                if node.department not in self.company.departments:
                    self._unknown(
                        (*path, "department"), "department", node.department, "departments"
                    )
                self._prompts((*path, "announce_prompt"), node.announce_prompt)
                for i, skill in enumerate(node.skills):
                    self._template((*path, "skills", i), skill)
                if node.priority is not None:
                    self._template((*path, "priority"), node.priority)
            case CallbackNode():
                self._prompts((*path, "prompt"), node.prompt)
                if node.ask_number:
                    self._prompts((*path, "ask_prompt"), node.ask_prompt)
                if node.ask_time:
                    self._prompts((*path, "time_prompt"), node.time_prompt)
                if node.department is not None and node.department not in self.company.departments:
                    self._unknown(
                        (*path, "department"), "department", node.department, "departments"
                    )
            case IcmNode():
                for i, exc in enumerate(node.exceptions):
                    if exc not in self.company.employees:
                        self._unknown((*path, "exceptions", i), "employee", exc, "employees")
                for i, source in enumerate(node.sources):
                    if isinstance(source, HttpSource):
                        self._crm_source((*path, "sources", i), source)
                if not node.sources:
                    self.error((*path, "sources"), "an icm node needs at least one source")
                if (
                    node.default is not None
                    and self.company.resolve_target(node.default) is None
                    and not is_phone_number(node.default)
                ):
                    self.error(
                        (*path, "default"),
                        f"default {node.default!r} is not an employee, extension or number",
                    )
            case VoicemailNode():
                self._prompts((*path, "prompt"), node.prompt)
                if node.mailbox is not None and self.company.resolve_target(node.mailbox) is None:
                    self._unknown(
                        (*path, "mailbox"),
                        "employee or department",
                        node.mailbox,
                        "employees",
                        "departments",
                    )
            case GotoNode():
                other = cfg.scenarios.get(node.scenario)
                if other is None:
                    self._unknown((*path, "scenario"), "scenario", node.scenario, "scenarios")
                elif node.node is not None and node.node not in other.nodes:
                    self._unknown(
                        (*path, "node"),
                        f"node of scenario {node.scenario!r}",
                        node.node,
                        f"nodes:{node.scenario}",
                    )
            case DialplanNode():
                self._template((*path, "extension"), node.extension)
            case HangupNode():
                if node.prompt is not None:
                    self._prompts((*path, "prompt"), node.prompt)

    def _crm_source(self, path: Path, source: HttpSource) -> None:
        """The URL is a template of an http(s) URL; ``allowed_hosts`` are host names or
        addresses and, when the URL names its host literally, that host is one of them;
        headers have names HTTP allows; a body is JSON, sent with POST; ``map`` leads to
        employees."""
        self._template((*path, "url"), source.url, env=True)
        for name, value in source.headers.items():
            where = (*path, "headers", name)
            if not _HEADER_NAME.match(name):
                self.error(where, f"{name!r} is not an HTTP header name")
            elif name.lower() in _HEADERS_SET_BY_US:
                self.error(where, f"{name} is set by Switchboard itself")
            self._template(where, value, env=True)
        if source.body is not None:
            self._crm_body((*path, "body"), source)
        for crm_value, employee in source.map.items():
            if employee not in self.company.employees:
                self._unknown((*path, "map", crm_value), "employee", employee, "employees")
        for j, host in enumerate(source.allowed_hosts):
            if not _is_host(host):
                self.error(
                    (*path, "allowed_hosts", j),
                    f"{host!r} is not a host name or address "
                    "(write the host alone, e.g. crm.example.com: no scheme, port or path)",
                )
        # the URL up to its first placeholder: what the check can know of it
        literal = source.url.partition("{")[0]
        scheme, sep, rest = literal.partition("://")
        # no "://" before the first placeholder: fine only if the URL starts with one
        wrong_scheme = scheme.lower() not in ("http", "https") if sep else bool(literal)
        if wrong_scheme:
            self.error((*path, "url"), "use http:// or https://, e.g. https://crm/find?n={caller}")
            return
        host_ends = any(c in rest for c in "/?#") or literal == source.url
        allowed = {h.lower().strip("[]") for h in source.allowed_hosts}
        if sep and host_ends and allowed:
            try:
                host = urlsplit(literal).hostname or ""
            except ValueError:
                host = ""
            if host not in allowed:
                self.error((*path, "url"), f"host {host!r} is not in allowed_hosts")

    def _env_only(self, path: Path, text: str) -> None:
        """A text the runtime fills from its environment only (``{env.NAME}``)."""
        try:
            parsed = parse_template(text, env=True)
        except TemplateError as exc:
            self.error(path, str(exc))
            return
        others = [name for name in parsed.placeholders if not name.startswith("env.")]
        if others:
            self.error(path, f"{{{others[0]}}}: only {{env.NAME}} may be used here")

    def _crm_body(self, path: Path, source: HttpSource) -> None:
        """A POST's JSON body: a template that gives JSON whatever the values are."""
        if source.method != "POST":
            self.error(path, "a body is sent with method: POST")
            return
        try:
            parsed = parse_json_template(source.body or "")
        except TemplateError as exc:
            self.error(path, str(exc))
            return
        # each value JSON-escaped, as a call's are: quotes and backslashes stay inside
        sample = parsed.render({name: json_value('x"y\\z') for name in parsed.placeholders})
        try:
            json.loads(json.dumps(None) if not sample.strip() else sample)
        except ValueError as exc:
            self.error(
                path,
                f"not JSON once filled in ({exc}); write each placeholder inside a string: "
                '{"phone": "{caller}"}',
            )

    def _template(self, path: Path, text: str, env: bool = False) -> None:
        try:
            parse_template(text, env=env)
        except TemplateError as exc:
            self.error(path, str(exc))

    def _prompts(self, path: Path, prompts: str | list[str]) -> None:
        declared = set(self.config.prompts)
        items = [prompts] if isinstance(prompts, str) else prompts
        if not items:
            self.error(path, "no prompt given")
        for i, prompt in enumerate(items):
            where = path if isinstance(prompts, str) else (*path, i)
            if prompt.startswith(("number:", "digits:")):
                self._template(where, prompt.split(":", 1)[1])
            elif not is_known_prompt(prompt, declared) and self.missing(prompt, "prompts"):
                self.error(
                    where,
                    f"unknown prompt {prompt!r} (declare it under `prompts:`, "
                    f"or write sound:{prompt} for an Asterisk sound file)",
                )

    def _switch(self, scenario: str, name: str, node: SwitchNode, path: Path) -> None:
        number_valued = node.value.strip() in {"{called}", "{caller}"}
        matchers: list[CaseMatcher] = []

        def exact(value: str) -> str:
            if number_valued and is_phone_number(value):
                return normalize(value, self.plan)
            return value

        if isinstance(node.cases, dict):
            for key, target in node.cases.items():
                where = (*path, "cases", key)
                if key.startswith("prefix:"):
                    matchers.append(
                        CaseMatcher(next=target, label=f"case {key}", prefixes=(key[7:],))
                    )
                elif key.startswith("regex:"):
                    pattern = self._regex(where, key[6:])
                    if pattern is not None:
                        matchers.append(
                            CaseMatcher(next=target, label=f"case {key}", pattern=pattern)
                        )
                else:
                    matchers.append(
                        CaseMatcher(
                            next=target, label=f"case {key}", values=frozenset({exact(key)})
                        )
                    )
        else:
            for i, case in enumerate(node.cases):
                where = (*path, "cases", i)
                if case.value is not None:
                    values = [case.value] if isinstance(case.value, str) else case.value
                    matchers.append(
                        CaseMatcher(
                            next=case.next,
                            label=f"case #{i + 1}",
                            values=frozenset(exact(v) for v in values),
                        )
                    )
                elif case.prefix is not None:
                    prefixes = [case.prefix] if isinstance(case.prefix, str) else case.prefix
                    matchers.append(
                        CaseMatcher(
                            next=case.next, label=f"case #{i + 1}", prefixes=tuple(prefixes)
                        )
                    )
                elif case.regex is not None:
                    pattern = self._regex((*where, "regex"), case.regex)
                    if pattern is not None:
                        matchers.append(
                            CaseMatcher(next=case.next, label=f"case #{i + 1}", pattern=pattern)
                        )
        self.company.switch_cases[(scenario, name)] = tuple(matchers)

    def _regex(self, path: Path, text: str) -> re.Pattern[str] | None:
        try:
            return re.compile(text)
        except re.error as exc:
            self.error(path, f"bad regular expression {text!r}: {exc}")
            return None

    # --- the graph ----------------------------------------------------------------

    def _edges(self, scenario: str, node: Node) -> Iterator[tuple[NodeKey, bool]]:
        """Every (successor, instant) pair: instant edges can be taken with no wait."""
        nodes = self.config.scenarios[scenario].nodes
        if isinstance(node, GotoNode):
            other = self.config.scenarios.get(node.scenario)
            if other is not None:
                entry = node.node or other.start
                if entry in other.nodes:
                    yield (node.scenario, entry), True
            return
        exits = node.exits()
        instant = _instant_exits(node)
        for exit_name, target in exits.items():
            if target in nodes:
                yield (scenario, target), exit_name in instant

    def _reachability(self) -> None:
        # a node set aside for its own errors may have led anywhere: no guesses there
        set_aside = {
            p[1] for p in self.invalid if len(p) == 4 and p[0] == "scenarios" and p[2] == "nodes"
        }
        for scenario_name, scenario in self.config.scenarios.items():
            if scenario.start not in scenario.nodes or scenario_name in set_aside:
                continue
            seen = {scenario.start}
            # nodes entered directly by a goto from elsewhere count as entries
            for other_name, other in self.config.scenarios.items():
                for node in other.nodes.values():
                    if isinstance(node, GotoNode) and node.scenario == scenario_name and node.node:
                        seen.add(node.node)
                del other_name
            # and nodes a `callers:` entry starts calls in
            for route in self.config.callers:
                if route.scenario == scenario_name and route.node:
                    seen.add(route.node)
            stack = list(seen)
            while stack:
                current = stack.pop()
                if current not in scenario.nodes:
                    continue
                for (s, target), _ in self._edges(scenario_name, scenario.nodes[current]):
                    if s == scenario_name and target not in seen:
                        seen.add(target)
                        stack.append(target)
            for node_name in scenario.nodes:
                if node_name not in seen:
                    self.warning(
                        ("scenarios", scenario_name, "nodes", node_name),
                        "unreachable: no path from the scenario's start leads here",
                    )

    def _callback_departments(self) -> None:
        """A `callback` node without `department:` calls back for the department of the
        queue the caller left (by `callback` or `overflow`; it stays known for the rest of
        the call).  Reached by any path that passes no queue, nobody could call back:
        an error, naming one such path from a scenario's start (every start is a way in:
        a number, the default scenario, a FastAGI ``route?scenario=``)."""
        came_from: dict[NodeKey, NodeKey | None] = {}
        pending: deque[NodeKey] = deque()
        for scenario_name, scenario in self.config.scenarios.items():
            if scenario.start in scenario.nodes:
                came_from[(scenario_name, scenario.start)] = None
                pending.append((scenario_name, scenario.start))
        while pending:
            current = pending.popleft()
            node = self.config.scenarios[current[0]].nodes[current[1]]
            if isinstance(node, QueueNode):
                continue  # past a queue, the department is known
            for key, _ in self._edges(current[0], node):
                if key not in came_from:
                    came_from[key] = current
                    pending.append(key)
        for key in came_from:
            node = self.config.scenarios[key[0]].nodes[key[1]]
            if not isinstance(node, CallbackNode) or node.department is not None:
                continue
            route = [key]
            while (previous := came_from[route[-1]]) is not None:
                route.append(previous)
            way = " -> ".join(f"{s}.{n}" for s, n in reversed(route))
            if len(route) == 1:
                way += ", the scenario's start"
            self.error(
                ("scenarios", key[0], "nodes", key[1]),
                f"no department to call back for: a call comes here without passing a "
                f"queue ({way}), and its call-back could never be made; set `department:` "
                "on this node, or let every way here pass a queue",
            )

    def _loops(self) -> None:
        graph: dict[NodeKey, list[NodeKey]] = {}
        for scenario_name, scenario in self.config.scenarios.items():
            for node_name, node in scenario.nodes.items():
                graph[(scenario_name, node_name)] = [
                    key for key, instant in self._edges(scenario_name, node) if instant
                ]
        for cycle in _cycles(graph):
            first = cycle[0]
            route = " -> ".join(f"{s}.{n}" for s, n in (*cycle, first))
            self.error(
                ("scenarios", first[0], "nodes", first[1]),
                f"loop that never waits for the caller or the clock: {route} "
                "(it would spin forever in a live call; put a play, menu or dial in it)",
            )


# a host name (letters, digits, '-', '_', dots) or an IPv4 or IPv6 address
_HOST_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return _HOST_NAME.match(text) is not None
    return True


def _exit_field(node: Node, exit_name: str) -> Path:
    if exit_name.startswith("case ") and isinstance(node, SwitchNode):
        key = exit_name[5:]
        if isinstance(node.cases, dict):
            return ("cases", key)
        return ("cases", int(key.lstrip("#")) - 1, "next")
    if exit_name.startswith("option "):
        return ("options", exit_name[7:])
    return (exit_name,)


def _instant_exits(node: Node) -> frozenset[str]:
    """Exits a node can take at once, without the caller or the clock moving."""
    match node:
        case AssignNode() | SwitchNode() | NotifyNode() | ScheduleNode():
            return frozenset(node.exits())
        case DialNode():
            instant = {"busy", "unavailable"}
            if node.busy is None or node.unavailable is None:
                instant.add("noanswer")
            return frozenset(instant)
        case IcmNode():
            return frozenset({"notfound", "noanswer"})
        case _:
            return frozenset()


def _cycles(graph: dict[NodeKey, list[NodeKey]]) -> list[list[NodeKey]]:
    """One cycle from each strongly connected component that has one (Tarjan)."""
    index: dict[NodeKey, int] = {}
    low: dict[NodeKey, int] = {}
    on_stack: set[NodeKey] = set()
    stack: list[NodeKey] = []
    found: list[list[NodeKey]] = []
    counter = 0

    for root in graph:
        if root in index:
            continue
        work: list[tuple[NodeKey, int]] = [(root, 0)]
        while work:
            node, child_i = work.pop()
            if child_i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = graph.get(node, [])
            if child_i < len(children):
                work.append((node, child_i + 1))
                child = children[child_i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[NodeKey] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, []):
                    found.append(_order_cycle(component, graph))
    return found


def _order_cycle(component: list[NodeKey], graph: dict[NodeKey, list[NodeKey]]) -> list[NodeKey]:
    """A shortest walk from the component's first-declared node back to it.

    Every step is a real edge, so the route printed is one the call can take.
    """
    members = set(component)
    order = {key: i for i, key in enumerate(graph)}
    start = min(component, key=order.__getitem__)
    came_from: dict[NodeKey, NodeKey] = {}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for nxt in graph[current]:
            if nxt not in members:
                continue
            if nxt == start:
                path = [current]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return path[::-1]
            if nxt not in came_from:
                came_from[nxt] = current
                queue.append(nxt)
    return [start]  # unreachable for a strongly connected component


def check_config(config: Config, invalid: set[Path]) -> tuple[Company, list[Problem]]:
    checker = _Checker(config, invalid)
    company = checker.run()
    return company, checker.problems
