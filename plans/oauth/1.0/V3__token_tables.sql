-- Authorization codes, access tokens and refresh tokens. Each row is keyed
-- by the token's signature; the token itself is never stored.

CREATE TABLE authorization_codes (
    signature           text PRIMARY KEY,
    request_id          text NOT NULL,
    client_id           text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject             text NOT NULL,
    requested_scopes    text[] NOT NULL DEFAULT '{}',
    granted_scopes      text[] NOT NULL DEFAULT '{}',
    redirect_uri        text NOT NULL,
    form_data           text NOT NULL DEFAULT '',
    session_data        text NOT NULL DEFAULT '{}',
    active              boolean NOT NULL DEFAULT true,
    requested_at        timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL
);

CREATE TABLE access_tokens (
    signature           text PRIMARY KEY,
    request_id          text NOT NULL,
    client_id           text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject             text NOT NULL,
    requested_scopes    text[] NOT NULL DEFAULT '{}',
    granted_scopes      text[] NOT NULL DEFAULT '{}',
    session_data        text NOT NULL DEFAULT '{}',
    active              boolean NOT NULL DEFAULT true,
    requested_at        timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    revoked_at          timestamptz
);

CREATE INDEX access_tokens_request_id_idx ON access_tokens (request_id);
CREATE INDEX access_tokens_client_id_idx ON access_tokens (client_id);

CREATE TABLE refresh_tokens (
    signature           text PRIMARY KEY,
    request_id          text NOT NULL,
    client_id           text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject             text NOT NULL,
    requested_scopes    text[] NOT NULL DEFAULT '{}',
    granted_scopes      text[] NOT NULL DEFAULT '{}',
    session_data        text NOT NULL DEFAULT '{}',
    active              boolean NOT NULL DEFAULT true,
    requested_at        timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz,
    revoked_at          timestamptz
);

CREATE INDEX refresh_tokens_request_id_idx ON refresh_tokens (request_id);
CREATE INDEX refresh_tokens_client_id_idx ON refresh_tokens (client_id);
