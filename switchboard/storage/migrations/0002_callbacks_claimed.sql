-- Switchboard schema, version 2: finding claims whose holder stopped renewing them.
CREATE INDEX callbacks_in_progress ON callbacks (claimed_at) WHERE status = 'in_progress';
