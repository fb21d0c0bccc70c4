-- Token endpoint authentication method per client (OpenID Connect Dynamic
-- Client Registration). Existing clients keep HTTP Basic.

ALTER TABLE clients
    ADD COLUMN token_endpoint_auth_method varchar(64) NOT NULL DEFAULT 'client_secret_basic';
ALTER TABLE clients
    ADD CONSTRAINT clients_token_endpoint_auth_method_check
    CHECK (token_endpoint_auth_method IN (
        'client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'));
