-- Switchboard schema (current version). `switchboard db migrate` builds the same from switchboard/storage/migrations/

CREATE TABLE config_versions (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,             -- the file it was imported from
    sha256      text NOT NULL,             -- of the data (config.export.canonical_form): re-import is a no-op
    yaml        text NOT NULL,
    comment     text
);
COMMENT ON TABLE config_versions IS
    'Every imported configuration; config_activations says which one is current.';
CREATE UNIQUE INDEX config_versions_sha256 ON config_versions (sha256);

CREATE TABLE config_activations (
    id             bigserial PRIMARY KEY,
    config_version bigint NOT NULL REFERENCES config_versions (id) ON DELETE CASCADE,
    activated_at   timestamptz NOT NULL DEFAULT now(),
    activated_by   text NOT NULL,             -- 'import', 'cli', 'cli:<user>', 'api:<token name>'
    comment        text
);
COMMENT ON TABLE config_activations IS
    'Each time a configuration version became the current one; the newest row is the current version.';

CREATE VIEW config_current AS
SELECT config_version AS version, activated_at, activated_by, comment
FROM config_activations ORDER BY id DESC LIMIT 1;
COMMENT ON VIEW config_current IS 'The current configuration version (one row; none before the first import).';

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
    steps       jsonb NOT NULL,            -- the trace: node, type, exit, times, details, events
    uniqueid    text,                      -- Asterisk's, of the caller's channel: joins the CDR
    linkedid    text,
    queue_department text,                 -- of the last queue the caller waited in
    recording   text,                      -- the conversation's recording (NAME.wav)
    recording_removed_at timestamptz       -- when it was removed after recording.keep_days
);
COMMENT ON TABLE calls IS 'One row per call, whatever happened to it.';
COMMENT ON COLUMN calls.uniqueid IS 'Asterisk''s uniqueid of the caller''s channel (CDR uniqueid).';
COMMENT ON COLUMN calls.linkedid IS 'Asterisk''s linkedid of the caller''s channel (CDR/CEL linkedid).';
COMMENT ON COLUMN calls.queue_department IS
    'The department of the last queue the caller waited in (NULL: no queue); an abandoned call''s too.';
CREATE INDEX calls_caller_started ON calls (caller, started_at DESC);
CREATE INDEX calls_started ON calls (started_at);
CREATE INDEX calls_linkedid ON calls (linkedid);
COMMENT ON COLUMN calls.recording IS
    'The conversation''s recording: its file is NAME.wav in the recordings folder (NULL: none).';
COMMENT ON COLUMN calls.recording_removed_at IS
    'When the recording was removed after recording.keep_days (`switchboard recordings prune`).';
CREATE INDEX calls_recorded ON calls (ended_at) WHERE recording IS NOT NULL;

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
    result      text,
    wait_s      real,
    talk_s      real,
    duration_s  real
);
COMMENT ON TABLE callback_attempts IS 'Every attempt to keep a call-back, and how it ended.';
COMMENT ON COLUMN callback_attempts.wait_s IS
    'Seconds from the first dial to the employee and the customer meeting (the whole attempt if they never met).';
COMMENT ON COLUMN callback_attempts.talk_s IS
    'Seconds the employee and the customer talked (NULL: they never met, or the end was not recorded).';
COMMENT ON COLUMN callback_attempts.duration_s IS
    'Seconds from the first dial to the end of the attempt (NULL: not recorded, e.g. its instance died).';

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
    status      text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'heard', 'handled')),
    status_by   text,
    status_at   timestamptz,
    UNIQUE (call_id, recording)
);
COMMENT ON TABLE messages IS 'Voicemail messages left by callers.';
COMMENT ON COLUMN messages.status IS 'new, heard or handled';
COMMENT ON COLUMN messages.status_by IS 'Who changed the status last: cli:<login>, api:<token>.';
CREATE INDEX messages_created ON messages (created_at DESC);
CREATE INDEX messages_mailbox_status ON messages (mailbox, status);

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

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    sha256       text NOT NULL UNIQUE,      -- hex SHA-256 of the token
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
COMMENT ON TABLE api_tokens IS 'Bearer tokens of the admin API, by name; the token itself is never stored.';

CREATE TABLE vips (
    caller      text PRIMARY KEY,          -- normalised, as call records store callers
    priority    integer NOT NULL CHECK (priority BETWEEN -1000 AND 1000),
    note        text NOT NULL DEFAULT '',  -- why (shown by `switchboard vip list`)
    added_at    timestamptz NOT NULL DEFAULT now(),
    added_by    text NOT NULL DEFAULT ''   -- cli, api
);
COMMENT ON TABLE vips IS 'Callers and their queue priority (higher: offered an agent first).';

-- One set of agents for several instances (schema version 10, issue 14).
CREATE TABLE acd_instances (
    instance     text PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    renewed_at   timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz NOT NULL
);
COMMENT ON TABLE acd_instances IS
    'The instances sharing the agents, each with a lease it renews; past it, its rows are released.';

CREATE TABLE acd_reservations (
    agent        text PRIMARY KEY,
    instance     text NOT NULL,
    call_id      text NOT NULL,
    reserved_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE acd_reservations IS
    'An agent held for one call (ringing, then talking, then in wrap-up) by the instance that carries it.';
CREATE INDEX acd_reservations_instance ON acd_reservations (instance);

CREATE TABLE acd_waiting (
    call_id      text PRIMARY KEY,
    instance     text NOT NULL,
    department   text NOT NULL,
    priority     integer NOT NULL DEFAULT 0,   -- higher first
    arrived_at   timestamptz NOT NULL,
    skills       text[] NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE acd_waiting IS
    'A caller waiting in a department''s queue on some instance: the order across instances.';
CREATE INDEX acd_waiting_order ON acd_waiting (department, priority DESC, arrived_at, call_id);

-- The desk phones' device states, shared (schema version 11, issue 14).
CREATE TABLE acd_devices (
    agent       text PRIMARY KEY,
    instance    text NOT NULL,                   -- the instance next to the phone's Asterisk
    state       text NOT NULL CHECK (state IN ('idle', 'in_use', 'unavailable', 'unknown')),
    changed_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE acd_devices IS
    'The device state of each desk phone on one instance''s Asterisk, as that instance last heard it.';

-- Analytics (schema version 5): views over calls and call-backs, for `switchboard report` and
-- BI tools.  `day` is the date in the session's TimeZone (`switchboard report` sets the
-- company's; a BI connection: SET TimeZone = 'Europe/Moscow').

CREATE VIEW call_steps AS
SELECT c.call_id,
       c.started_at,
       c.started_at::date AS day,
       c.scenario AS call_scenario,
       coalesce(s.step ->> 'scenario', c.scenario) AS scenario,
       s.position::integer AS position,
       s.position = jsonb_array_length(c.steps) AS last_step,
       s.step ->> 'node' AS node,
       s.step ->> 'type' AS type,
       s.step ->> 'via' AS via,
       s.step ->> 'exit' AS exit,
       (s.step ->> 't')::double precision AS t,
       (s.step ->> 't_end')::double precision AS t_end,
       coalesce((s.step ->> 't_end')::double precision, c.duration_s)
           - (s.step ->> 't')::double precision AS in_node_s,
       coalesce(s.step -> 'details', '{}'::jsonb) AS details,
       c.result,
       c.duration_s
FROM calls c
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(c.steps) = 'array' THEN c.steps ELSE '[]'::jsonb END
) WITH ORDINALITY AS s (step, position);
COMMENT ON VIEW call_steps IS
    'One row per node an inbound call passed, in order (position 1..n; last_step: the call ended there).';

CREATE VIEW all_calls AS
SELECT 'inbound'::text AS call_type,
       c.call_id,
       NULL::bigint AS callback_id,
       c.started_at,
       c.ended_at,
       c.started_at::date AS day,
       c.scenario,
       c.called,
       c.caller,
       -- the department that answered, else the one whose queue the caller waited in
       coalesce(c.department, c.queue_department) AS department,
       c.agent,
       c.result,
       c.reason,
       c.wait_s,
       c.talk_s,
       c.duration_s,
       c.transfers,
       c.result = 'connected' AS answered,
       -- offered to a person: it rang someone, waited in a queue or reached a dial node
       c.result = 'connected' OR c.steps @? '$[*] ? (@.type == "dial" || @.type == "queue"
           || exists (@.events[*] ? (@.event == "ring")))' AS offered,
       c.transfers > 0 AS transferred,
       extract(epoch FROM c.started_at - previous.started_at)::double precision
           AS since_previous_s
FROM calls c
LEFT JOIN LATERAL (
    -- the same caller's previous call (calls_caller_started); withheld numbers are nobody
    SELECT p.started_at FROM calls p
    WHERE p.caller = c.caller AND c.caller NOT IN ('', 'unknown', 'anonymous')
      AND p.started_at <= c.started_at
      AND (p.started_at < c.started_at OR p.call_id < c.call_id)
    ORDER BY p.started_at DESC
    LIMIT 1
) previous ON true
UNION ALL
SELECT 'callback'::text,
       b.call_id,                              -- the inbound call that asked for it
       b.id,
       a.started_at,
       a.ended_at,
       a.started_at::date,
       b.scenario,
       o.called,                               -- the number the customer had called
       b.number,                               -- the number called back
       b.department,
       a.agent,
       a.result,                               -- done, no answer, busy, customer hung up ...
       NULL::text,
       a.wait_s,                               -- NULL for attempts recorded before version 9
       a.talk_s,
       a.duration_s,
       NULL::integer,
       a.result = 'done',
       NULL::boolean,
       NULL::boolean,
       NULL::double precision
FROM callback_attempts a
JOIN callbacks b ON b.id = a.callback_id
LEFT JOIN calls o ON o.call_id = b.call_id;
COMMENT ON VIEW all_calls IS
    'Every call Switchboard made or took: inbound calls (calls) and call-back attempts (callback_attempts), by call_type.';

CREATE VIEW call_summary AS
SELECT day, call_type, scenario, called, department, agent, result, reason,
       count(*) AS calls,
       count(*) FILTER (WHERE answered) AS answered,
       count(*) FILTER (WHERE offered) AS offered,
       count(*) FILTER (WHERE answered AND wait_s <= 20) AS answered_within_20s,
       count(*) FILTER (WHERE transferred) AS transferred,
       count(*) FILTER (WHERE since_previous_s <= 24 * 3600) AS repeat_calls_24h,
       count(talk_s) AS talked,
       avg(wait_s) AS avg_wait_s,
       avg(talk_s) AS avg_talk_s,
       avg(duration_s) AS avg_duration_s,
       sum(wait_s::double precision) AS wait_s_sum,
       sum(talk_s::double precision) AS talk_s_sum,
       sum(duration_s::double precision) AS duration_s_sum
FROM all_calls
GROUP BY day, call_type, scenario, called, department, agent, result, reason;
COMMENT ON VIEW call_summary IS
    'Calls per day, type, scenario, number, department, agent, result and reason: counts, averages and sums.';

CREATE VIEW node_funnel AS
SELECT day, scenario, node, type,
       count(DISTINCT call_id) AS calls,
       count(*) AS visits,
       count(*) FILTER (WHERE last_step) AS ended,
       count(*) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned,
       avg(duration_s) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned_after_s,
       avg(in_node_s) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned_in_node_s,
       count(DISTINCT call_id) FILTER (WHERE passes > 1) AS repeated
FROM (
    -- passes: how many times this step's call passed this node (`day` keeps a filter on
    -- it below the window)
    SELECT day, call_id, scenario, node, type, last_step, result, duration_s, in_node_s,
           count(*) OVER (PARTITION BY day, call_id, scenario, node) AS passes
    FROM call_steps
) s
GROUP BY day, scenario, node, type;
COMMENT ON VIEW node_funnel IS
    'Per day, scenario and node: calls that entered, visits, calls that ended there, abandoned there and after how long, calls that passed it more than once.';

CREATE VIEW node_exits AS
SELECT day, scenario, node, via, exit, count(*) AS times
FROM call_steps
WHERE exit IS NOT NULL
GROUP BY day, scenario, node, via, exit;
COMMENT ON VIEW node_exits IS 'Per day, scenario and node: how often calls left it by each exit, to which node.';

CREATE VIEW menu_choices AS
SELECT day, scenario, node,
       CASE WHEN details ? 'choice' THEN 'option'
            WHEN details ? 'extension' THEN 'extension'
            WHEN exit IS NULL THEN 'ended'
            ELSE coalesce(via, 'default') END AS kind,
       coalesce(details ->> 'choice', details ->> 'extension') AS choice,
       count(*) AS times
FROM call_steps
WHERE type = 'menu'
GROUP BY 1, 2, 3, 4, 5;
COMMENT ON VIEW menu_choices IS
    'Per day and menu: what callers chose (an option''s key, an extension), took the default, or ended there.';
