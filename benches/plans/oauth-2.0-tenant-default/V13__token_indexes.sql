-- The token janitor deletes expired rows per tenant; without these indexes
-- every run scans the token tables.

CREATE INDEX access_tokens_tenant_expires_at_idx ON access_tokens (tenant_id, expires_at);
CREATE INDEX refresh_tokens_tenant_expires_at_idx ON refresh_tokens (tenant_id, expires_at);
CREATE INDEX authorization_codes_tenant_expires_at_idx
    ON authorization_codes (tenant_id, expires_at);
CREATE INDEX refresh_tokens_access_token_signature_idx
    ON refresh_tokens (access_token_signature);
