-- Switchboard schema, version 12: a voicemail message's status (issue 15).
-- new (nobody has dealt with it), heard, handled; by whom and when it last changed
-- (`switchboard messages mark`, POST /api/v1/messages/{id}/status).

ALTER TABLE messages
    ADD COLUMN status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'heard', 'handled')),
    ADD COLUMN status_by text,
    ADD COLUMN status_at timestamptz;
COMMENT ON COLUMN messages.status IS 'new, heard or handled';
COMMENT ON COLUMN messages.status_by IS 'Who changed the status last: cli:<login>, api:<token>.';
CREATE INDEX messages_mailbox_status ON messages (mailbox, status);
