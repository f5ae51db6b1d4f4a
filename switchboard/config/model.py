"""The configuration file as frozen, typed objects: one schema per section and node type.

Field names are the YAML keys of ``DESIGN.md``; they are the product's face.
Structural rules live here (types, unknown keys, required exits); rules that
look across the file (references, duplicates, loops) live in `validate`.
"""

from __future__ import annotations

import string
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Seconds = Annotated[float, Field(ge=0)]
PositiveSeconds = Annotated[float, Field(gt=0)]


class Section(BaseModel):
    """Every config object: immutable, unknown keys rejected, numbers read as text."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Numbering(Section):
    country_code: str = ""
    city_code: str = ""
    national_prefix: str = ""
    international_prefix: str = "810"
    national_length: Annotated[int, Field(ge=4, le=15)] = 10


SkillLevel = Annotated[int, Field(ge=1, le=100)]


class Employee(Section):
    id: str
    name: str = ""
    extension: str | None = None
    mobile: str | None = None
    forward_to_mobile_after: Seconds | None = None
    # instances sharing agents (database.shared_agents): the instance (SWITCHBOARD_INSTANCE)
    # next to the Asterisk this desk phone is on; the others ring it through
    # `asterisk.endpoints.elsewhere`.  Unset: on every instance's own Asterisk.
    asterisk: str | None = Field(default=None, min_length=1)
    language: str | None = None  # their whisper's language (default: the call's)
    email: str | None = None  # told of the voicemail messages left for them (`mail:`)
    # the Asterisk mailbox their phone subscribes to for message waiting (pjsip.conf
    # `mailboxes=`): its lamp shows their new voicemail messages (ARI: PUT /mailboxes)
    mwi: str | None = Field(default=None, min_length=1)
    # skill -> level (higher: better); a plain list gives each skill level 1
    skills: dict[str, SkillLevel] = Field(default_factory=dict)

    @field_validator("skills", mode="before")
    @classmethod
    def _skill_list(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return {str(skill): 1 for skill in value}
        return value


# How members are rung (`all_at_once`, `one_by_one`, `cascade`) or chosen one at a
# time by their statistics; app_queue's names: ringall, linear, -, leastrecent,
# fewestcalls, rrmemory, random.
RingStrategy = Literal[
    "all_at_once",
    "one_by_one",
    "cascade",
    "least_recent",
    "fewest_calls",
    "round_robin",
    "random",
]


class Whisper(Section):
    """What an employee hears when they answer, before the caller is put through."""

    # prompt references (declared prompts, sound:X, number:/digits: with templates:
    # "digits:{caller}"), played in the employee's language
    prompts: tuple[str, ...]
    refuse_key: str | None = "*"  # pressed meanwhile: not taken (the next member is rung)


# `record:` on a department or a scenario: every conversation is recorded, none is, or
# the employee starts the recording with `recording.on_demand_key` while they talk
RecordPolicy = Literal["always", "never", "on_demand"]


class Department(Section):
    id: str
    name: str = ""
    extension: str | None = None
    email: str | None = None  # told of the voicemail messages left for the department
    # the caller-ID name its members' phones show for a call (a template, e.g.
    # "[Sales] {caller_name}"); None: the caller's own
    caller_id_name: str | None = None
    whisper: Whisper | None = None  # what its members hear before a call is put through
    mwi: str | None = Field(default=None, min_length=1)  # as an employee's
    record: RecordPolicy | None = None  # its conversations (None: the scenario's)
    strategy: RingStrategy = "all_at_once"
    ring_delay: PositiveSeconds = 10
    ring_timeout: PositiveSeconds = 30
    # employee ids, or ``{employee: id, penalty: N}``: a member with a higher penalty
    # (tier) is rung only when no member of a lower one can be
    members: tuple[str, ...] = ()
    penalties: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    schedule: str | None = None  # when call-backs for this department may be made
    # a queue does not offer a call again to a member who was just rung for it (no
    # answer, busy, failed) for this long (app_queue's `retry`)
    retry: PositiveSeconds = 5
    # after a conversation a member rests this long before the next offer (app_queue's
    # `wrapuptime`)
    wrapup: Seconds = 0

    @model_validator(mode="before")
    @classmethod
    def _member_entries(cls, data: Any) -> Any:
        """``{employee: id, penalty: N}`` members: their ids into `members`, their
        penalties into `penalties`."""
        if not isinstance(data, dict) or not isinstance(data.get("members"), (list, tuple)):
            return data
        members: list[Any] = []
        penalties = dict(data.get("penalties") or {})
        for entry in data["members"]:
            if isinstance(entry, dict) and set(entry) <= {"employee", "penalty"}:
                employee = entry.get("employee")
                if employee is None:
                    raise ValueError("a member entry needs `employee:` (and may have `penalty:`)")
                members.append(employee)
                if "penalty" in entry:
                    penalty = entry["penalty"]
                    if not isinstance(penalty, int) or isinstance(penalty, bool) or penalty < 0:
                        raise ValueError(
                            f"the penalty of member {employee!r} must be a whole number, "
                            f"0 or more, got {penalty!r}"
                        )
                    penalties[str(employee)] = penalty
            else:
                members.append(entry)
        return {**data, "members": members, "penalties": penalties}

    def penalty(self, employee_id: str) -> int:
        return self.penalties.get(employee_id, 0)


class Endpoints(Section):
    employee: str = "PJSIP/{extension}"
    mobile: str = "PJSIP/{number}@trunk"
    # FastAGI rings with Dial(): a mobile that must press 1 first goes through a Local
    # channel whose context asks (see dialplan/extensions-switchboard.conf)
    mobile_confirm: str = "Local/{number}@switchboard-confirm"
    # a desk phone on another instance's Asterisk (`employees[].asterisk`): through the
    # trunk to it, by default a PJSIP endpoint named after that instance
    elsewhere: str = "PJSIP/{extension}@{asterisk}"

    # the placeholders each template may use
    PLACEHOLDERS: ClassVar[dict[str, set[str]]] = {
        "employee": {"extension"},
        "mobile": {"number"},
        "mobile_confirm": {"number"},
        "elsewhere": {"extension", "asterisk"},
    }

    @model_validator(mode="after")
    def _placeholders(self) -> Endpoints:
        for name, allowed in self.PLACEHOLDERS.items():
            template = getattr(self, name)
            try:
                used = {field for _, field, _, _ in string.Formatter().parse(template) if field}
            except ValueError as exc:
                raise ValueError(f"{name}: {template!r}: {exc}") from None
            if used - allowed:
                wrong = ", ".join("{" + u + "}" for u in sorted(used - allowed))
                fine = ", ".join("{" + a + "}" for a in sorted(allowed))
                raise ValueError(f"{name}: {template!r} may use only {fine}, not {wrong}")
        return self

    def desk(self, extension: str, asterisk: str | None = None) -> str:
        """A desk phone's dial string: on this Asterisk, or (``asterisk``: the instance
        next to the Asterisk it is on) through `elsewhere`."""
        if asterisk is not None:
            return self.elsewhere.format(extension=extension, asterisk=asterisk)
        return self.employee.format(extension=extension)

    def dial(
        self,
        device: Literal["desk", "mobile", "external"],
        number: str,
        via_confirm: bool = False,
        asterisk: str | None = None,
    ) -> str:
        """The dial string for one phone: a desk by its extension (``asterisk``: on
        another instance's Asterisk, see `desk`), a mobile or external number through
        the trunk; ``via_confirm``: a mobile through `mobile_confirm` (FastAGI, where
        the dialplan asks the press-1 question)."""
        if device == "desk":
            return self.desk(number, asterisk)
        if via_confirm:
            return self.mobile_confirm.format(number=number)
        return self.mobile.format(number=number)


DEFAULT_AGI_LISTEN = "127.0.0.1:4573"


def check_ari_url(url: str) -> str:
    """``url`` if it is an ARI base URL (``http(s)://host[:port][/prefix]``); ValueError
    otherwise -- credentials in it above all, which would end up in logs."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("use http://HOST:PORT, e.g. http://127.0.0.1:8088")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "no user or password in the URL (logs would show them): "
            "set asterisk.ari_user and asterisk.ari_password instead"
        )
    if parts.query or parts.fragment:
        raise ValueError("no query string or fragment (an api_key belongs in ari_user)")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError("the port must be a number") from None
    return url.strip()


def parse_listen(
    text: str, what: str = "--listen", example: str = DEFAULT_AGI_LISTEN
) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:4573`` for IPv6) -> (host, port); ValueError naming ``what``."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{what} {text!r}: use HOST:PORT, e.g. {example}")
    return host.strip("[]") or "127.0.0.1", int(port)


class AsteriskSection(Section):
    ari_url: str = "http://127.0.0.1:8088"
    ari_user: str = "switchboard"
    ari_password: SecretStr = SecretStr("")
    app: str = "switchboard"
    endpoints: Endpoints = Endpoints()
    fallback_context: str = "switchboard-fallback"
    # ARI requests over the events websocket when Asterisk takes them (20.14, 21.9, 22.4
    # and later); false: always HTTP
    rest_over_websocket: bool = True
    agi_listen: str = DEFAULT_AGI_LISTEN  # `switchboard agi`; SWITCHBOARD_AGI_LISTEN

    @field_validator("agi_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        parse_listen(value, "agi_listen")
        return value

    @field_validator("ari_url")
    @classmethod
    def _ari_url(cls, value: str) -> str:
        return check_ari_url(value)

    @field_validator("ari_password")
    @classmethod
    def _ari_password(cls, value: SecretStr) -> SecretStr:
        # Asterisk takes no ARI user without a password (res/ari/config.c: user_apply,
        # ari_conf_validate_user); left out, SWITCHBOARD_ARI_PASSWORD may give it
        if not value.get_secret_value().strip():
            raise ValueError(
                "empty: Asterisk refuses an ARI user with no password; give the one in "
                "ari.conf, or leave the key out and set SWITCHBOARD_ARI_PASSWORD"
            )
        return value


# the admin web server (/healthz, /readyz, /metrics): loopback, and one port per command,
# so that `run` and `agi` may serve on one machine
DEFAULT_ADMIN_LISTEN = "127.0.0.1:8089"
DEFAULT_ADMIN_AGI_LISTEN = "127.0.0.1:8090"


class AdminSection(Section):
    """The admin web server of `switchboard run` and `switchboard agi`."""

    enabled: bool = True
    listen: str = DEFAULT_ADMIN_LISTEN  # `switchboard run`; SWITCHBOARD_ADMIN_LISTEN
    agi_listen: str = DEFAULT_ADMIN_AGI_LISTEN  # `switchboard agi`; SWITCHBOARD_ADMIN_AGI_LISTEN

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value, "admin.listen", DEFAULT_ADMIN_LISTEN)
        return value

    @field_validator("agi_listen")
    @classmethod
    def _agi_listen(cls, value: str) -> str:
        parse_listen(value, "admin.agi_listen", DEFAULT_ADMIN_AGI_LISTEN)
        return value


class DatabaseSection(Section):
    dsn: SecretStr | None = None
    spill_dir: str = "spill"  # call records wait here while the database is away
    # several instances (one per Asterisk) share one set of agents through the database:
    # a queue offer reserves its agent there (switchboard.storage.shared_acd)
    shared_agents: bool = False
    # seconds an instance sharing agents is alive for without renewing (it renews every
    # third of it): one killed is released by the others this long after its last renewal
    lease: Annotated[float, Field(ge=0.5, le=600)] = 15.0


class Schedule(Section):
    """Opening hours by weekday; parsed and checked by `switchboard.schedule`."""

    hours: dict[str, str | list[str]] = {}
    breaks: dict[str, str | dict[str, str | list[str]]] = {}
    holidays: tuple[str, ...] = ()


class CallerEntry(Section):
    """A caller sent somewhere of their own, whatever number they called: a blacklist
    (``scenario: blocked``), a VIP line, a known fraudster (``node: goodbye``)."""

    caller: str
    scenario: str
    node: str | None = None  # default: the scenario's start


class NumberEntry(Section):
    number: str | None = None
    line: Annotated[int, Field(ge=0)] | None = None
    scenario: str
    language: str | None = None

    @model_validator(mode="after")
    def _number_or_line(self) -> NumberEntry:
        if self.number is None and self.line is None:
            raise ValueError("a numbers entry needs `number` (calledID) or `line` (analog line)")
        return self


class PromptDef(Section):
    file: str | None = None  # Asterisk sound name; defaults to the prompt's name
    duration: PositiveSeconds = 3.0  # used by `simulate` for the virtual clock
    text: str | None = None


class Greeting(Section):
    """Boundaries of the built-in `greeting` prompt (local time)."""

    morning_until: str = "11:00"
    day_until: str = "17:00"


class Callbacks(Section):
    """How `switchboard run` makes promised call-backs."""

    order: Literal["employee_first", "customer_first"] = "employee_first"
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    # seconds before attempt 2, 3, ...: the last one repeats for further attempts
    retry_after: Annotated[tuple[PositiveSeconds, ...], Field(min_length=1)] = (60, 300, 900)
    employee_ring: PositiveSeconds = 20
    customer_ring: PositiveSeconds = 30
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 10  # made at once by one instance


class Limits(Section):
    max_call_duration: PositiveSeconds = 4 * 3600
    max_instant_steps: Annotated[int, Field(ge=10)] = 200
    # calls one `switchboard run` carries at once; beyond, new calls go straight to the
    # fallback context (Asterisk, not Switchboard, serves them) instead of everyone waiting
    max_calls: Annotated[int, Field(ge=1)] = 2_000
    # `switchboard agi`: seconds a FastAGI connection has to send its whole environment
    # (Asterisk sends it as it connects), and how many connections still sending it are
    # kept, in all and from one address; beyond, the oldest of them is closed
    agi_header_timeout: PositiveSeconds = 5.0
    agi_max_pending: Annotated[int, Field(ge=1)] = 2_000
    agi_max_pending_per_peer: Annotated[int, Field(ge=1)] = 1_000


# --- nodes -------------------------------------------------------------------------


class NodeBase(Section):
    """Common to all nodes; `EXITS` names the fields that point at other nodes."""

    EXITS: ClassVar[tuple[str, ...]] = ()
    description: str | None = None

    def exits(self) -> dict[str, str]:
        """Exit name -> target node, for every exit that is set."""
        found: dict[str, str] = {}
        for name in self.EXITS:
            target = getattr(self, name)
            if isinstance(target, str):
                found[name] = target
        return found


Prompts = str | list[str]


class AssignNode(NodeBase):
    type: Literal["assign"]
    EXITS: ClassVar[tuple[str, ...]] = ("next",)
    var: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    value: str
    next: str


class SwitchCase(Section):
    value: str | list[str] | None = None
    prefix: str | list[str] | None = None
    regex: str | None = None
    next: str

    @model_validator(mode="after")
    def _one_form(self) -> SwitchCase:
        forms = [f for f in ("value", "prefix", "regex") if getattr(self, f) is not None]
        if len(forms) != 1:
            raise ValueError("a case needs exactly one of `value`, `prefix` or `regex`")
        return self


class SwitchNode(NodeBase):
    type: Literal["switch"]
    EXITS: ClassVar[tuple[str, ...]] = ("default",)
    value: str
    cases: dict[str, str] | list[SwitchCase] = {}
    default: str

    def exits(self) -> dict[str, str]:
        found = super().exits()
        if isinstance(self.cases, dict):
            for key, target in self.cases.items():
                found[f"case {key}"] = target
        else:
            for i, case in enumerate(self.cases):
                found[f"case #{i + 1}"] = case.next
        return found


class NotifyNode(NodeBase):
    type: Literal["notify"]
    EXITS: ClassVar[tuple[str, ...]] = ("next",)
    message: str
    level: Literal["info", "warning"] = "info"
    next: str


class PlayNode(NodeBase):
    type: Literal["play"]
    EXITS: ClassVar[tuple[str, ...]] = ("next",)
    prompt: Prompts
    interruptible: bool = False
    next: str


class MenuNode(NodeBase):
    type: Literal["menu"]
    EXITS: ClassVar[tuple[str, ...]] = ("default", "extension_noanswer")
    prompt: Prompts
    wait: PositiveSeconds = 5
    inter_digit: PositiveSeconds = 3
    max_digits: Annotated[int, Field(ge=1, le=32)] | None = None
    retries: Annotated[int, Field(ge=0, le=20)] = 2
    invalid_prompt: Prompts | None = "invalid-option"
    options: dict[str, str] = {}
    default: str
    extension_dialing: bool = False
    extension_noanswer: str | None = None  # a dialled extension did not answer; else default
    ring_timeout: PositiveSeconds = 30

    @field_validator("options")
    @classmethod
    def _keys_are_keys(cls, options: dict[str, str]) -> dict[str, str]:
        for key in options:
            if not key or any(ch not in "0123456789*#" for ch in key):
                raise ValueError(f"menu option {key!r} is not a key sequence (digits, * and #)")
        return options

    def exits(self) -> dict[str, str]:
        found = super().exits()
        for key, target in self.options.items():
            found[f"option {key}"] = target
        return found


class ScheduleNode(NodeBase):
    """`open` / `closed`, an exit per break name (extra keys), `holiday` (else closed)."""

    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)
    type: Literal["schedule"]
    EXITS: ClassVar[tuple[str, ...]] = ("open", "closed", "holiday")
    schedule: str
    open: str
    closed: str
    holiday: str | None = None

    @property
    def break_exits(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def exits(self) -> dict[str, str]:
        found = super().exits()
        for name, target in self.break_exits.items():
            if isinstance(target, str):
                found[name] = target
        return found


class DialNode(NodeBase):
    type: Literal["dial"]
    EXITS: ClassVar[tuple[str, ...]] = ("noanswer", "busy", "unavailable")
    target: str
    ring_timeout: PositiveSeconds | None = None  # default: the department's, or 30 s
    noanswer: str
    busy: str | None = None
    unavailable: str | None = None
    caller_id_name: str | None = None  # the name the rung phones show (a template)
    whisper: Whisper | None = None  # the department's, unless given


class QueueNode(NodeBase):
    type: Literal["queue"]
    EXITS: ClassVar[tuple[str, ...]] = ("overflow", "callback")
    department: str
    moh: str = "default"
    announce_every: Seconds = 40  # 0: no announcements
    announce_prompt: Prompts = "please-hold"
    announce_position: bool = True
    announce_estimate: bool = True  # "about 4 minutes", once the queue knows a handle time
    max_wait: PositiveSeconds = 300
    retry: PositiveSeconds | None = None  # default: the department's `retry`
    callback_key: Annotated[str, Field(pattern=r"^[0-9*#]$")] | None = None
    overflow: str
    callback: str | None = None
    # skills an agent needs (templates: "en", "{lang}"; one rendering empty is dropped);
    # the best levels first, any level after `widen_after` s, anyone after twice that
    skills: tuple[str, ...] = ()
    widen_after: PositiveSeconds | None = None
    # the caller's priority here (a template: "10", "{priority}"); default: the call's
    # `priority` variable, else the config's `vip:` list, else 0
    priority: str | None = None

    @model_validator(mode="after")
    def _callback_pair(self) -> QueueNode:
        if self.callback_key is not None and self.callback is None:
            raise ValueError("`callback_key` is set: the `callback` exit is required")
        return self

    caller_id_name: str | None = None  # the name the rung phones show (a template)
    whisper: Whisper | None = None  # the department's, unless given


class CallbackNode(NodeBase):
    type: Literal["callback"]
    EXITS: ClassVar[tuple[str, ...]] = ("next",)
    ask_number: bool = False
    ask_prompt: Prompts = "callback-enter-number"
    # the caller may choose when: HHMM (or H, HH: on the hour), the next such time
    ask_time: bool = False
    time_prompt: Prompts = "callback-enter-time"
    prompt: Prompts = "callback-confirm"
    department: str | None = None  # default: the queue the caller came from
    next: str


class LastAgentSource(Section):
    type: Literal["last_agent"]
    days: PositiveSeconds = 30
    timeout: PositiveSeconds = 1.0


class ContactsSource(Section):
    type: Literal["contacts"]
    timeout: PositiveSeconds = 1.0  # for the contacts table; the config's map answers at once


# What a CRM (an ICM `http` source) may answer; beyond any of these the lookup fails: one
# log line, and the next source.  A CRM is outside our control: without them one answer
# of 300 MB, nested 100,000 deep or redirected to 127.0.0.1 held or misrouted calls.
CRM_MAX_BODY = 64 * 1024  # bytes; an answer naming one employee is a few hundred
CRM_MAX_DEPTH = 32  # JSON nesting
CRM_MAX_REDIRECTS = 3


class HttpSource(Section):
    type: Literal["http"]
    url: str  # a template; {env.NAME} reads the runtime's environment (a token)
    method: Literal["GET", "POST"] = "GET"
    # request headers, each value a template ({env.NAME} for a token: never logged)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None  # POST: a JSON template, each value JSON-escaped
    # dotted JSON path to the employee id or extension; a number indexes an array
    # (``_embedded.contacts.0.responsible_user_id``; -1: the last)
    path: str = "employee"
    # what the CRM answers -> employee id, for a CRM that names its own users
    # (``{"6587432": ivanov}``); a value not in it is taken as it is
    map: dict[str, str] = Field(default_factory=dict)
    timeout: PositiveSeconds = 1.5
    max_body: Annotated[int, Field(ge=1, le=16 * 2**20)] = CRM_MAX_BODY  # bytes read at most
    max_depth: Annotated[int, Field(ge=1, le=512)] = CRM_MAX_DEPTH  # of the JSON answer
    # redirects followed, each to the same host and port (or from http to https of the
    # same host) or to a host of `allowed_hosts`; 0: none
    max_redirects: Annotated[int, Field(ge=0, le=10)] = CRM_MAX_REDIRECTS
    # the hosts this source may ask (names or addresses, no port); empty: any host
    allowed_hosts: tuple[str, ...] = ()


IcmSource = Annotated[LastAgentSource | ContactsSource | HttpSource, Field(discriminator="type")]


class IcmNode(NodeBase):
    type: Literal["icm"]
    EXITS: ClassVar[tuple[str, ...]] = ("noanswer", "notfound")
    sources: list[IcmSource]
    exceptions: tuple[str, ...] = ()
    to_mobile: bool = False
    ring_timeout: PositiveSeconds = 20
    default: str | None = None  # employee id, extension or number to ring when nobody is found
    noanswer: str
    notfound: str

    @field_validator("sources", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"type": item} if isinstance(item, str) else item for item in value]
        return value

    caller_id_name: str | None = None  # the name the rung phones show (a template)


class VoicemailNode(NodeBase):
    type: Literal["voicemail"]
    EXITS: ClassVar[tuple[str, ...]] = ("next",)
    prompt: Prompts = "voicemail-intro"
    max_length: PositiveSeconds = 120
    beep: bool = True
    mailbox: str | None = None  # employee or department id
    next: str


class GotoNode(NodeBase):
    type: Literal["goto"]
    scenario: str
    node: str | None = None  # default: the scenario's start


class DialplanNode(NodeBase):
    type: Literal["dialplan"]
    context: str
    extension: str = "s"
    priority: Annotated[int, Field(ge=1)] = 1


class HangupNode(NodeBase):
    type: Literal["hangup"]
    prompt: Prompts | None = None


Node = Annotated[
    AssignNode
    | SwitchNode
    | NotifyNode
    | PlayNode
    | MenuNode
    | ScheduleNode
    | DialNode
    | QueueNode
    | CallbackNode
    | IcmNode
    | VoicemailNode
    | GotoNode
    | DialplanNode
    | HangupNode,
    Field(discriminator="type"),
]

NODE_TYPES: tuple[str, ...] = (
    "assign", "switch", "notify", "play", "menu", "schedule", "dial",
    "queue", "callback", "icm", "voicemail", "goto", "dialplan", "hangup",
)  # fmt: skip


class Scenario(Section):
    start: str
    language: str | None = None
    # its conversations, where the department says nothing (None: never recorded)
    record: RecordPolicy | None = None
    nodes: dict[str, Node]


WebhookEvent = Literal["ringing", "answered", "ended", "message"]


class Webhook(Section):
    """A screen-pop target (`switchboard.webhooks`): an HTTP POST of each event."""

    url: str  # http(s); {env.NAME} reads the runtime's environment
    # HMAC-SHA256 key of the X-Switchboard-Signature header; "{env.NAME}" keeps it out
    # of the file (and the database's copy)
    secret: str | None = None
    events: tuple[WebhookEvent, ...] = ("ringing", "answered", "ended", "message")
    timeout: Annotated[float, Field(gt=0, le=60)] = 2.0  # seconds one POST may take
    retries: Annotated[int, Field(ge=0, le=10)] = 3  # after 1, 2, 4 ... seconds

    @property
    def host(self) -> str:
        """The URL's host, for a log line (never its path, query or a secret)."""
        rest = self.url.partition("://")[2]
        return rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]


class MailSection(Section):
    """SMTP, for telling owners of their voicemail messages (`switchboard.mail`)."""

    host: str | None = None  # None: no e-mail is sent
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    security: Literal["none", "starttls", "tls"] = "none"
    user: str | None = None
    password: str | None = None  # "{env.SMTP_PASSWORD}" keeps it out of the file
    sender: str = "switchboard@localhost"
    # a message nobody owns, or whose owner has no e-mail address, goes here (None: not sent)
    messages_to: str | None = None
    attach_max: Annotated[int, Field(ge=0, le=50 * 2**20)] = 10 * 2**20  # bytes of WAV
    timeout: Annotated[float, Field(gt=0, le=120)] = 10.0
    retries: Annotated[int, Field(ge=0, le=10)] = 3


class RecordingSection(Section):
    """Conversation recording (`record:` on departments and scenarios)."""

    # prompts a caller hears once, before the first ringing whose conversation may be
    # recorded (where the law asks callers to be told); () : none
    notice: tuple[str, ...] = ()
    # what an employee presses during a conversation under `on_demand` to record it
    on_demand_key: str = "*3"
    # days a conversation's recording is kept (`switchboard recordings prune`, and
    # every hour by `run` and `agi`); 0 keeps them for ever
    keep_days: Annotated[int, Field(ge=0, le=36_500)] = 90


class Config(Section):
    timezone: str = "UTC"
    language: str = "en"
    numbering: Numbering = Numbering()
    employees: tuple[Employee, ...] = ()
    departments: tuple[Department, ...] = ()
    asterisk: AsteriskSection = AsteriskSection()
    database: DatabaseSection = DatabaseSection()
    admin: AdminSection = AdminSection()
    schedules: dict[str, Schedule] = {}
    numbers: tuple[NumberEntry, ...] = ()
    callers: tuple[CallerEntry, ...] = ()  # checked before `numbers`
    default_scenario: str | None = None  # for calls whose number is not listed
    prompts: dict[str, PromptDef] = {}
    greeting: Greeting = Greeting()
    contacts: dict[str, str] = {}  # caller number -> responsible employee id (icm)
    # caller number -> priority in every queue (higher: offered an agent first; 0 is
    # everyone else's); a `priority` variable set by `assign` or ICM wins
    vip: dict[str, Annotated[int, Field(ge=-1000, le=1000)]] = {}
    limits: Limits = Limits()
    callbacks: Callbacks = Callbacks()
    # screen-pop: POSTs when an employee's phone rings, when they answer, when it ends
    webhooks: tuple[Webhook, ...] = ()
    mail: MailSection = MailSection()  # voicemail messages told by e-mail
    recording: RecordingSection = RecordingSection()  # conversations recorded
    scenarios: dict[str, Scenario]
