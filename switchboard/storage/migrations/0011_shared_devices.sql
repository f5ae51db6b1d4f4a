-- Switchboard schema, version 11: the desk phones' device states, shared (issue 14).
-- An employee's desk phone may be on either instance's Asterisk (`employees[].asterisk`).
-- The instance next to it follows its device state over ARI (or FastAGI) and writes it
-- here (NOTIFY switchboard_acd 'device <agent> <state>'); the other instances count it,
-- so none of them rings a phone busy with a call Switchboard did not place.

CREATE TABLE acd_devices (
    agent       text PRIMARY KEY,
    instance    text NOT NULL,                   -- the instance next to the phone's Asterisk
    state       text NOT NULL CHECK (state IN ('idle', 'in_use', 'unavailable', 'unknown')),
    changed_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE acd_devices IS
    'The device state of each desk phone on one instance''s Asterisk, as that instance last heard it.';
