"""The admin API's OpenAPI 3.1 document (``GET /api/openapi.json``), written as data.

Each route of `switchboard.admin.api` is one entry of ``paths``; a test holds the
two to each other and checks the document against the OpenAPI 3.1 schema.
"""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_NULL_STR = {"type": ["string", "null"]}
_NULL_NUM = {"type": ["number", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR, description)


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _list_of(key: str, ref: str) -> dict[str, Any]:
    return _object(
        {key: {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}}, [key]
    )


def _page_of(key: str, ref: str, cursor: str) -> dict[str, Any]:
    """A page of a list: its rows, and ``next``, the address of the next page."""
    return _object(
        {
            key: {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}},
            "next": {
                "type": ["string", "null"],
                "description": f"the next page (the same query, {cursor}= the last row's id); "
                "null: this was the last",
            },
        },
        [key, "next"],
    )


def _op(
    summary: str,
    ok: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    tag: str = "",
    open_route: bool = False,
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    if not open_route:
        responses["401"] = _error("no token, or one unknown or revoked")
        responses["429"] = {
            **_error(
                "too many unknown or revoked tokens from this client address (20 a minute): "
                "every token refused until Retry-After seconds have passed"
            ),
            "headers": {
                "Retry-After": {
                    "description": "seconds to wait",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        }
        responses["503"] = _error("no database, or it is not answering")
    for status, why in (errors or {}).items():
        responses[status] = _error(why)
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if tag:
        op["tags"] = [tag]
    if open_route:
        op["security"] = []
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    return op


def _path_param(
    name: str, description: str, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _query(
    name: str, description: str, schema: dict[str, Any] | None = None, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_ID = _path_param("id", "the row's id", {"type": "integer", "minimum": 1})

_AGENT = _object(
    {
        "id": {"type": "string"},
        "state": {
            "type": ["string", "null"],
            "enum": ["logged_out", "available", "ringing", "talking", "wrapup", "paused", None],
        },
        "since": _NULL_TIME,
        "reason": _NULL_STR,
        "departments": {"type": "array", "items": {"type": "string"}},
        "device": {
            "type": ["string", "null"],
            "enum": ["idle", "in_use", "unavailable", "unknown", None],
        },
        "free": {"type": "boolean"},
        # with a database: the call holding the agent across the instances sharing
        # agents (database.shared_agents), null when none does
        "held_by": {
            "type": ["object", "null"],
            "properties": {
                "instance": {"type": "string"},
                "call_id": {"type": "string"},
                "since": {"type": "string", "format": "date-time"},
            },
        },
    },
    ["id", "state", "since", "reason", "departments", "device"],
)
_QUEUE = _object(
    {
        "department": {"type": "string"},
        "name": {"type": "string"},
        "waiting": {
            "type": "array",
            "items": _object(
                {
                    "call_id": {"type": "string"},
                    "caller": _NULL_STR,
                    "position": {"type": "integer"},
                    "priority": {"type": "integer"},
                    "waited": {"type": "number"},
                    "estimate": _NULL_NUM,
                }
            ),
        },
        "agents": _object(
            {
                k: {"type": "integer"}
                for k in ("free", "busy", "unreachable", "paused", "logged_out")
            }
        ),
    },
    ["department", "waiting", "agents"],
)
_CALL = _object(
    {
        "call_id": {"type": "string"},
        "called": {"type": "string"},
        "caller": {"type": "string"},
        "scenario": {"type": "string"},
        "node": {"type": "string"},
        "state": {"type": "string", "enum": ["scenario", "queue", "talking"]},
        "seconds": {"type": "number"},
        "department": _NULL_STR,
        "agent": _NULL_STR,
    },
    ["call_id", "called", "caller", "scenario", "node", "state", "seconds"],
)
_CALLBACK = _object(
    {
        "id": {"type": "integer"},
        "call_id": {"type": "string"},
        "number": {"type": "string"},
        "caller": {"type": "string"},
        "department": _NULL_STR,
        "scenario": {"type": "string"},
        "created_at": _TIME,
        "due_at": _TIME,
        "status": {
            "type": "string",
            "enum": ["pending", "in_progress", "done", "failed", "cancelled"],
        },
        "attempts": {"type": "integer"},
        "last_result": _NULL_STR,
    },
    ["id", "number", "status", "due_at"],
)
_MESSAGE = _object(
    {
        "id": {"type": "integer"},
        "created_at": _TIME,
        "caller": {"type": "string"},
        "called": {"type": "string"},
        "mailbox": _NULL_STR,
        "length": {"type": "number"},
        "recording": {"type": "string"},
        "recording_url": {"type": "string"},
        "status": {"type": "string", "enum": ["new", "heard", "handled"]},
        "status_by": _NULL_STR,
        "status_at": _NULL_TIME,
    },
    ["id", "created_at", "caller", "recording", "status"],
)
_FINISHED_CALL = _object(
    {
        "call_id": {"type": "string"},
        "started_at": _TIME,
        "ended_at": _TIME,
        "called": {"type": "string"},
        "caller": {"type": "string"},
        "caller_name": {"type": "string"},
        "scenario": {"type": "string"},
        "result": {"type": "string"},
        "reason": {"type": "string"},
        "wait": {"type": "number"},
        "talk": {"type": ["number", "null"]},
        "duration": {"type": "number"},
        "agent": _NULL_STR,
        "department": _NULL_STR,
        "recording": _NULL_STR,
        "recording_url": _NULL_STR,
        "recording_removed_at": _NULL_TIME,
    },
    ["call_id", "started_at", "ended_at", "result", "recording", "recording_url"],
)
_WAV_FILE = {
    "description": "the WAV file",
    "content": {"audio/wav": {"schema": {"type": "string", "contentMediaType": "audio/wav"}}},
}
_CALL_ID = _path_param("call_id", "the call's id (SWITCHBOARD_CALL_ID)")
_VERSION = _object(
    {
        "version": {"type": "integer"},
        "created_at": _TIME,
        "source": {"type": "string"},
        "sha256": {"type": "string"},
        "comment": _NULL_STR,
        "current": {"type": "boolean"},
        "activated_at": {**_NULL_TIME, "description": "when it last became the current one"},
        "activated_by": {**_NULL_STR, "description": "import, cli:<login> or api:<token name>"},
        "yaml": {"type": "string"},
    },
    ["version", "created_at", "source", "sha256"],
)

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Switchboard admin API",
        "version": "1",
        "description": (
            "The admin server of `switchboard run` / `switchboard agi`. Every route but this "
            "document asks for `Authorization: Bearer TOKEN` (`switchboard tokens create NAME`)."
        ),
    },
    "servers": [{"url": "/api"}],
    "security": [{"bearer": []}],
    "paths": {
        "/openapi.json": {"get": _op("this document", _json({"type": "object"}), open_route=True)},
        "/v1/agents": {
            "get": _op(
                "every member of a department: state, since, reason, device; with a "
                "database, the call holding each across instances and who waits where",
                _json(
                    {
                        **_list_of("agents", "Agent"),
                        "properties": {
                            **_list_of("agents", "Agent")["properties"],
                            "waiting": {
                                "type": "array",
                                "items": _object(
                                    {
                                        "department": {"type": "string"},
                                        "instance": {"type": "string"},
                                        "waiting": {"type": "integer"},
                                    }
                                ),
                            },
                        },
                    }
                ),
                tag="desk",
            )
        },
        "/v1/agents/{agent}/{action}": {
            "post": _op(
                "log an agent in or out, pause or resume them (by api)",
                _json({"$ref": "#/components/schemas/Agent"}, "the agent after the change"),
                errors={
                    "400": "the body is not JSON",
                    "404": "unknown agent",
                    "409": "pausing or resuming a logged-out agent",
                    "422": "reason too long",
                },
                parameters=[
                    _path_param("agent", "the employee id"),
                    _path_param(
                        "action",
                        "what to do",
                        {"type": "string", "enum": ["login", "logout", "pause", "resume"]},
                    ),
                ],
                body={
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": _object({"reason": {"type": "string", "maxLength": 200}})
                        }
                    },
                },
                tag="desk",
            )
        },
        "/v1/queues": {
            "get": _op(
                "each department's waiting callers and its agents free or busy",
                _json(_list_of("queues", "Queue")),
                tag="desk",
            )
        },
        "/v1/calls": {
            "get": _op(
                "the calls carried now, longest first", _json(_list_of("calls", "Call")), tag="desk"
            )
        },
        "/v1/calls/{call_id}": {
            "get": _op(
                "a finished call's record, and the link to its conversation's recording",
                _json({"$ref": "#/components/schemas/FinishedCall"}, "the call's record"),
                errors={"404": "no such call (or its record is not written yet)"},
                parameters=[_CALL_ID],
                tag="calls",
            )
        },
        "/v1/calls/{call_id}/recording": {
            "get": _op(
                "the call's conversation recording (WAV; `record:`)",
                _WAV_FILE,
                errors={
                    "404": "no such call (not_found), it was not recorded (no_recording), or "
                    "its file is not in the recordings folder (recording_missing)",
                    "410": "its recording was removed after recording.keep_days "
                    "(recording_removed)",
                    "500": "its file cannot be read by the process (recording_unreadable)",
                },
                parameters=[_CALL_ID],
                tag="calls",
            )
        },
        "/v1/numbers": {
            "get": _op(
                "the numbers of the configuration it runs",
                _json(
                    _object(
                        {
                            "numbers": {
                                "type": "array",
                                "items": _object(
                                    {
                                        "number": _NULL_STR,
                                        "line": {"type": ["integer", "null"]},
                                        "scenario": {"type": "string"},
                                        "language": _NULL_STR,
                                    }
                                ),
                            },
                            "default_scenario": _NULL_STR,
                            "config_version": {"type": ["integer", "null"]},
                        },
                        ["numbers"],
                    )
                ),
                tag="configuration",
            )
        },
        "/v1/scenarios": {
            "get": _op(
                "the scenarios of the configuration it runs: nodes and exits",
                _json(
                    _object(
                        {
                            "scenarios": {"type": "array", "items": {"type": "object"}},
                            "config_version": {"type": ["integer", "null"]},
                        },
                        ["scenarios"],
                    )
                ),
                tag="configuration",
            )
        },
        "/v1/callbacks": {
            "get": _op(
                "call-backs, the soonest due first, a page at a time",
                _json(_page_of("callbacks", "Callback", "after")),
                errors={"400": "unknown status, bad limit, after not a call-back's id"},
                parameters=[
                    _query(
                        "status",
                        "only those",
                        {
                            "type": "string",
                            "enum": ["pending", "in_progress", "done", "failed", "cancelled"],
                        },
                    ),
                    _query(
                        "limit",
                        "at most this many (500)",
                        {"type": "integer", "minimum": 1, "maximum": 500},
                    ),
                    _query(
                        "after",
                        "the page after this call-back (the previous page's `next` says it)",
                        {"type": "integer", "minimum": 1},
                    ),
                ],
                tag="call-backs",
            )
        },
        "/v1/callbacks/{id}/cancel": {
            "post": _op(
                "cancel a pending call-back",
                _json({"$ref": "#/components/schemas/Callback"}),
                errors={"404": "no such call-back", "409": "not pending"},
                parameters=[_ID],
                tag="call-backs",
            )
        },
        "/v1/callbacks/{id}/reschedule": {
            "post": _op(
                "make a pending call-back due at another time",
                _json({"$ref": "#/components/schemas/Callback"}),
                errors={
                    "400": "the body is not a JSON object",
                    "404": "no such call-back",
                    "409": "not pending",
                    "422": "at is not an ISO time",
                },
                parameters=[_ID],
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _object(
                                {
                                    "at": {
                                        "type": "string",
                                        "description": "ISO time; naive: the company's timezone",
                                    }
                                },
                                ["at"],
                            )
                        }
                    },
                },
                tag="call-backs",
            )
        },
        "/v1/messages": {
            "get": _op(
                "voicemail messages, newest first, a page at a time",
                _json(_page_of("messages", "Message", "before")),
                errors={"400": "bad limit, before not a message's id"},
                parameters=[
                    _query(
                        "limit",
                        "at most this many (50)",
                        {"type": "integer", "minimum": 1, "maximum": 500},
                    ),
                    _query(
                        "before",
                        "the messages older than this one (the previous page's `next` says it)",
                        {"type": "integer", "minimum": 1},
                    ),
                ],
                tag="messages",
            )
        },
        "/v1/messages/{id}/recording": {
            "get": _op(
                "the message's recording (WAV)",
                _WAV_FILE,
                errors={
                    "404": "no such message (not_found), it names no file here (no_recording), "
                    "or its file is not in the recordings folder (recording_missing)",
                    "500": "its file cannot be read by the process (recording_unreadable)",
                },
                parameters=[_ID],
                tag="messages",
            )
        },
        "/v1/messages/{id}/status": {
            "post": _op(
                "mark a message new, heard or handled (by this token)",
                _json({"$ref": "#/components/schemas/Message"}, "the message after the change"),
                errors={
                    "400": "the body is not a JSON object",
                    "404": "no such message",
                    "422": "status is not new, heard or handled",
                },
                parameters=[_ID],
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _object(
                                {"status": {"type": "string", "enum": ["new", "heard", "handled"]}},
                                ["status"],
                            )
                        }
                    },
                },
                tag="messages",
            )
        },
        "/v1/report": {
            "get": _op(
                "the calls that started in [from, to), as `switchboard report --json`",
                _json({"type": "object"}),
                errors={"400": "bad from, to or by"},
                parameters=[
                    _query(
                        "from", "a day or ISO time (naive: the company's timezone)", required=True
                    ),
                    _query("to", "a day or ISO time, after from", required=True),
                    _query("scenario", "only this scenario"),
                    _query(
                        "by",
                        "a breakdown",
                        {
                            "type": "string",
                            "enum": ["number", "department", "agent", "reason", "day"],
                        },
                    ),
                ],
                tag="reports",
            )
        },
        "/v1/config/versions": {
            "get": _op(
                "the stored configuration versions, newest first",
                _json(_list_of("versions", "ConfigVersion")),
                tag="configuration",
            ),
            "post": _op(
                "check a configuration as `check` does; store it as the current version",
                _json(
                    _object(
                        {
                            "version": {"type": "integer"},
                            "created": {"type": "boolean"},
                            "activated": {
                                "type": "boolean",
                                "description": "false: it was the current version already",
                            },
                            "sha256": {"type": "string"},
                            "warnings": {"type": "array", "items": {"type": "string"}},
                        }
                    ),
                    "stored before: now the current version again, or it was already "
                    "(201: stored as a new version)",
                ),
                errors={
                    "400": "empty body",
                    "422": "errors, as `problems`: FILE:LINE: message",
                },
                parameters=[
                    _query("source", "the file name problems name (api)"),
                    _query("comment", "kept with the version"),
                ],
                body={
                    "required": True,
                    "content": {"application/yaml": {"schema": {"type": "string"}}},
                },
                tag="configuration",
            ),
        },
        "/v1/config/versions/{version}": {
            "get": _op(
                "one stored version, with its YAML (format=yaml: the YAML alone)",
                _json({"$ref": "#/components/schemas/ConfigVersion"}),
                errors={"404": "no such version"},
                parameters=[
                    _path_param("version", "the version", {"type": "integer", "minimum": 1}),
                    _query(
                        "format",
                        "yaml: the text alone",
                        {"type": "string", "enum": ["json", "yaml"]},
                    ),
                ],
                tag="configuration",
            )
        },
        "/v1/config/versions/{version}/activate": {
            "post": _op(
                "make a stored version the current one (new calls take it); a roll-back",
                _json(
                    _object(
                        {
                            "version": {"type": "integer"},
                            "changed": {
                                "type": "boolean",
                                "description": "false: it was the current one already",
                            },
                            "previous": {"type": ["integer", "null"]},
                        },
                        ["version", "changed", "previous"],
                    )
                ),
                errors={
                    "404": "no such version",
                    "422": "it does not load with this release, as `problems`",
                },
                parameters=[
                    _path_param("version", "the version", {"type": "integer", "minimum": 1}),
                    _query("comment", "why (kept in the history)"),
                ],
                tag="configuration",
            )
        },
        "/v1/simulate": {
            "post": _op(
                "a dry run of one call, as `switchboard simulate --json`",
                _json({"type": "object"}),
                errors={
                    "400": "the body is not a JSON object",
                    "422": "bad called, at, dtmf or agents",
                },
                body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _object(
                                {
                                    "called": {"type": "string"},
                                    "caller": {"type": "string"},
                                    "at": {
                                        "type": "string",
                                        "description": "ISO time; naive: the company's timezone",
                                    },
                                    "dtmf": {"type": "string"},
                                    "agents": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                        "description": "employee -> answer[:S], busy, noanswer",
                                    },
                                },
                                ["called"],
                            )
                        }
                    },
                },
                tag="simulate",
            )
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": _object(
                {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "problems": {"type": "array", "items": {"type": "string"}},
                },
                ["error", "message"],
            ),
            "Agent": _AGENT,
            "Queue": _QUEUE,
            "Call": _CALL,
            "Callback": _CALLBACK,
            "Message": _MESSAGE,
            "FinishedCall": _FINISHED_CALL,
            "ConfigVersion": _VERSION,
        },
    },
}

OPENAPI["paths"]["/v1/config/versions"]["post"]["responses"]["201"] = {
    **OPENAPI["paths"]["/v1/config/versions"]["post"]["responses"]["200"],
    "description": "stored as a new version",
}
