-- Device authorization grant (RFC 8628): the device polls with the device
-- code while the user enters the user code in a browser.

CREATE TABLE device_codes (
    device_code_signature   text PRIMARY KEY,
    user_code_signature     text NOT NULL UNIQUE,
    request_id              text NOT NULL,
    client_id               text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject                 text,
    requested_scopes        text[] NOT NULL DEFAULT '{}',
    granted_scopes          text[] NOT NULL DEFAULT '{}',
    status                  smallint NOT NULL DEFAULT 0,
    last_polled_at          timestamptz,
    requested_at            timestamptz NOT NULL DEFAULT now(),
    expires_at              timestamptz NOT NULL
);

CREATE INDEX device_codes_client_id_idx ON device_codes (client_id);
