-- Switchboard schema, version 4: callers served first (issue 11), managed with
-- `switchboard vip`; beside the configuration's `vip:` list, and winning over it.
-- switchboard/storage/vips.py reads and writes it.

CREATE TABLE vips (
    caller      text PRIMARY KEY,          -- normalised, as call records store callers
    priority    integer NOT NULL CHECK (priority BETWEEN -1000 AND 1000),
    note        text NOT NULL DEFAULT '',  -- why (shown by `switchboard vip list`)
    added_at    timestamptz NOT NULL DEFAULT now(),
    added_by    text NOT NULL DEFAULT ''   -- cli, api
);
COMMENT ON TABLE vips IS 'Callers and their queue priority (higher: offered an agent first).';
