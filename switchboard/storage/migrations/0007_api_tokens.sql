-- Switchboard schema, version 7: the admin API's bearer tokens (issue 12).  Only the
-- SHA-256 of a token is kept: `switchboard tokens create` shows the token once.

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    sha256       text NOT NULL UNIQUE,      -- hex SHA-256 of the token
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
COMMENT ON TABLE api_tokens IS 'Bearer tokens of the admin API, by name; the token itself is never stored.';
