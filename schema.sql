-- Switchboard schema (current version). `switchboard db migrate` builds the same from switchboard/storage/migrations/

CREATE TABLE config_versions (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,             -- the file it was imported from
    sha256      text NOT NULL,             -- of the data (config.export.canonical_form): re-import is a no-op
    yaml        text NOT NULL,
    comment     text
);
COMMENT ON TABLE config_versions IS 'Every imported configuration; the newest is the current one.';
CREATE UNIQUE INDEX config_versions_sha256 ON config_versions (sha256);

CREATE TABLE employees (
    config_version bigint NOT NULL REFERENCES config_versions (id) ON DELETE CASCADE,
    id          text NOT NULL,
    name        text NOT NULL DEFAULT '',
    extension   text,
    mobile      text,
    forward_to_mobile_after real,
    skills      text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (config_version, id)
);
COMMENT ON TABLE employees IS 'Employees as loaded with each configuration version.';

CREATE TABLE departments (
    config_version bigint NOT NULL REFERENCES config_versions (id) ON DELETE CASCADE,
    id          text NOT NULL,
    name        text NOT NULL DEFAULT '',
    extension   text,
    strategy    text NOT NULL,
    ring_delay  real NOT NULL,
    ring_timeout real NOT NULL,
    members     text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (config_version, id)
);
COMMENT ON TABLE departments IS 'Departments as loaded with each configuration version.';

CREATE TABLE numbers (
    config_version bigint NOT NULL REFERENCES config_versions (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    number      text,                      -- normalised calledID
    line        integer,                   -- analog line
    scenario    text NOT NULL,
    PRIMARY KEY (config_version, position)
);
COMMENT ON TABLE numbers IS 'Which scenario each number or analog line starts, per configuration version.';

CREATE TABLE calls (
    call_id     text PRIMARY KEY,          -- unique across instances: writes are idempotent by it
    instance    text NOT NULL DEFAULT '',
    channel     text NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz NOT NULL,
    called_raw  text NOT NULL DEFAULT '',
    called      text NOT NULL DEFAULT '',
    caller      text NOT NULL DEFAULT '',
    caller_name text NOT NULL DEFAULT '',
    line        integer,
    scenario    text NOT NULL,
    config_version bigint,
    result      text NOT NULL CHECK (result IN
                    ('connected', 'voicemail', 'callback', 'dialplan', 'hangup', 'abandoned')),
    reason      text NOT NULL,             -- caller hung up, agent hung up, max call duration ...
    wait_s      real NOT NULL,
    talk_s      real,
    duration_s  real NOT NULL,
    agent       text,                      -- the employee who talked to the caller
    department  text,
    transfers   integer NOT NULL DEFAULT 0,
    repeats     integer NOT NULL DEFAULT 0, -- how many times a node was passed again
    steps       jsonb NOT NULL             -- the trace: node, type, exit, times, details, events
);
COMMENT ON TABLE calls IS 'One row per call, whatever happened to it.';
CREATE INDEX calls_caller_started ON calls (caller, started_at DESC);
CREATE INDEX calls_started ON calls (started_at);

CREATE TABLE callbacks (
    id          bigserial PRIMARY KEY,
    request_id  text NOT NULL UNIQUE,      -- call id + engine request: a retry cannot double it
    call_id     text NOT NULL,
    number      text NOT NULL,             -- whom to call back
    caller      text NOT NULL DEFAULT '',
    department  text,
    scenario    text NOT NULL DEFAULT '',
    node        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    due_at      timestamptz NOT NULL DEFAULT now(),
    status      text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_progress', 'done', 'failed', 'cancelled')),
    attempts    integer NOT NULL DEFAULT 0,
    claimed_by  text,
    claimed_at  timestamptz,
    last_result text
);
COMMENT ON TABLE callbacks IS 'Promised call-backs; workers claim due rows with FOR UPDATE SKIP LOCKED.';
CREATE INDEX callbacks_due ON callbacks (due_at) WHERE status = 'pending';
CREATE INDEX callbacks_in_progress ON callbacks (claimed_at) WHERE status = 'in_progress';

CREATE TABLE callback_attempts (
    id          bigserial PRIMARY KEY,
    callback_id bigint NOT NULL REFERENCES callbacks (id) ON DELETE CASCADE,
    instance    text NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    agent       text,
    result      text
);
COMMENT ON TABLE callback_attempts IS 'Every attempt to keep a call-back, and how it ended.';

CREATE TABLE contacts (
    caller      text PRIMARY KEY,          -- normalised number
    employee_id text NOT NULL,
    source      text NOT NULL DEFAULT '',  -- config, csv:FILE, manual
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE contacts IS 'Caller -> responsible employee, for the icm contacts source.';

CREATE TABLE messages (
    id          bigserial PRIMARY KEY,
    call_id     text NOT NULL,
    recording   text NOT NULL,             -- the Asterisk recording name
    caller      text NOT NULL,
    called      text NOT NULL,
    mailbox     text,
    created_at  timestamptz NOT NULL,
    length_s    real NOT NULL,
    UNIQUE (call_id, recording)
);
COMMENT ON TABLE messages IS 'Voicemail messages left by callers.';
CREATE INDEX messages_created ON messages (created_at DESC);

CREATE TABLE agent_states (
    agent       text PRIMARY KEY,          -- the employee id (a member of a department)
    state       text NOT NULL CHECK (state IN ('available', 'logged_out', 'paused')),
    reason      text NOT NULL DEFAULT '',  -- why paused
    since       timestamptz NOT NULL,
    changed_by  text NOT NULL DEFAULT ''   -- phone, cli, api
);
COMMENT ON TABLE agent_states IS 'Each agent''s own state as last chosen; no row: available.';

CREATE TABLE agent_changes (
    id          bigserial PRIMARY KEY,
    agent       text NOT NULL,
    at          timestamptz NOT NULL,
    state       text NOT NULL CHECK (state IN ('available', 'logged_out', 'paused')),
    reason      text NOT NULL DEFAULT '',
    by          text NOT NULL DEFAULT '',  -- phone, cli, api
    instance    text                       -- the instance that made it; NULL: a request (CLI)
);
COMMENT ON TABLE agent_changes IS 'Every change agents made to their state: who, when, why.';
CREATE INDEX agent_changes_agent_at ON agent_changes (agent, at);

CREATE TABLE vips (
    caller      text PRIMARY KEY,          -- normalised, as call records store callers
    priority    integer NOT NULL CHECK (priority BETWEEN -1000 AND 1000),
    note        text NOT NULL DEFAULT '',  -- why (shown by `switchboard vip list`)
    added_at    timestamptz NOT NULL DEFAULT now(),
    added_by    text NOT NULL DEFAULT ''   -- cli, api
);
COMMENT ON TABLE vips IS 'Callers and their queue priority (higher: offered an agent first).';
