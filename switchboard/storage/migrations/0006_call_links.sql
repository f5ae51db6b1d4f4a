-- Switchboard schema, version 6: a call record joins Asterisk's own CDR and CEL (issue 12):
-- the caller channel's uniqueid and linkedid.  NULL for calls recorded before, or when
-- Asterisk could not be asked (the caller had already gone).

ALTER TABLE calls ADD COLUMN uniqueid text, ADD COLUMN linkedid text;
COMMENT ON COLUMN calls.uniqueid IS 'Asterisk''s uniqueid of the caller''s channel (CDR uniqueid).';
COMMENT ON COLUMN calls.linkedid IS 'Asterisk''s linkedid of the caller''s channel (CDR/CEL linkedid).';
CREATE INDEX calls_linkedid ON calls (linkedid);
