-- OAuth 2.0 clients and the keys that sign ID tokens and JWT access tokens.

CREATE TABLE clients (
    id                  text PRIMARY KEY,
    client_name         varchar(255) NOT NULL DEFAULT '',
    secret_hash         text,
    redirect_uris       text[] NOT NULL DEFAULT '{}',
    grant_types         text[] NOT NULL DEFAULT '{authorization_code,refresh_token}',
    response_types      text[] NOT NULL DEFAULT '{code}',
    scope               text NOT NULL DEFAULT 'openid offline_access',
    audience            text[] NOT NULL DEFAULT '{}',
    owner               varchar(255) NOT NULL DEFAULT '',
    policy_uri          text,
    tos_uri             text,
    client_uri          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE signing_keys (
    set_id      varchar(255) NOT NULL,
    kid         varchar(255) NOT NULL,
    alg         varchar(32) NOT NULL,
    use         varchar(8) NOT NULL DEFAULT 'sig',
    key_data    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (set_id, kid)
);
