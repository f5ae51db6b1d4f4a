-- Switchboard schema, version 10: one set of agents for several instances (issue 14).
-- Each `switchboard run` / `agi` next to its own Asterisk, one database: an instance
-- holds a lease it renews; an agent is reserved for one call at a time by one row
-- (no agent is rung by two calls at once); a caller waiting in a queue has a row, so
-- callers are offered agents in one order across instances (priority, then arrival).
-- Rows of an instance whose lease ran out are released by the others.

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
