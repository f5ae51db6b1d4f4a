-- Switchboard schema, version 13: a call's conversation recording (issue 15).
-- The name of the recording Asterisk made of the conversation (its file is NAME.wav in
-- the recordings folder); NULL: not recorded, or removed after `recording.keep_days`
-- (recording_removed_at says when).

ALTER TABLE calls ADD COLUMN recording text, ADD COLUMN recording_removed_at timestamptz;
COMMENT ON COLUMN calls.recording IS
    'The conversation''s recording: its file is NAME.wav in the recordings folder (NULL: none).';
COMMENT ON COLUMN calls.recording_removed_at IS
    'When the recording was removed after recording.keep_days (`switchboard recordings prune`).';
CREATE INDEX calls_recorded ON calls (ended_at) WHERE recording IS NOT NULL;
