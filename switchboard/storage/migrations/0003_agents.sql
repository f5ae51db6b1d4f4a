-- Switchboard schema, version 3: agents' own states (issue 11), kept across restarts, and
-- every change agents made, for reports.  switchboard/storage/agents.py reads and writes them.

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
