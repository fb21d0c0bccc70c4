-- Login sessions (the "remember me" cookie) and the consent a subject
-- granted to a client.

CREATE TABLE login_sessions (
    id                  text PRIMARY KEY,
    subject             text NOT NULL,
    authenticated_at    timestamptz,
    remember            boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE consent_grants (
    id                  text PRIMARY KEY,
    client_id           text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject             text NOT NULL,
    login_session_id    text,
    granted_scopes      text[] NOT NULL DEFAULT '{}',
    granted_audience    text[] NOT NULL DEFAULT '{}',
    remember            boolean NOT NULL DEFAULT false,
    requested_at        timestamptz NOT NULL DEFAULT now(),
    handled_at          timestamptz,
    revoked_at          timestamptz
);

CREATE INDEX consent_grants_client_subject_idx ON consent_grants (client_id, subject);
