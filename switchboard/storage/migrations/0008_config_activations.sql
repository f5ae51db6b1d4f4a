-- Switchboard schema, version 8: which configuration version is current, and since when
-- (issue 12).  Until now the newest version was the current one, so an older one could
-- not be made current again.  Each import of a new version, and each `switchboard config
-- activate` (or the admin API's activate), adds a row; the newest row names the current
-- version.  The rows are also the history: who made which version current, and when.

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

-- Until now each version was current from its import until the next one.
INSERT INTO config_activations (config_version, activated_at, activated_by)
SELECT id, created_at, 'import' FROM config_versions ORDER BY id;

COMMENT ON TABLE config_versions IS
    'Every imported configuration; config_activations says which one is current.';
