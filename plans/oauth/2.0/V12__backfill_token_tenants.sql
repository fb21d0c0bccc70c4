-- Copy each client's tenant onto its tokens, then require it.

UPDATE authorization_codes AS t SET tenant_id = c.tenant_id
    FROM clients AS c WHERE c.id = t.client_id;
UPDATE access_tokens AS t SET tenant_id = c.tenant_id
    FROM clients AS c WHERE c.id = t.client_id;
UPDATE refresh_tokens AS t SET tenant_id = c.tenant_id
    FROM clients AS c WHERE c.id = t.client_id;

ALTER TABLE authorization_codes ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE access_tokens ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE refresh_tokens ALTER COLUMN tenant_id SET NOT NULL;

-- Tokens issued before 1.3 never recorded a use.
UPDATE refresh_tokens SET first_used_at = requested_at
    WHERE first_used_at IS NULL AND NOT active;
