-- Multi-tenancy: every row belongs to a tenant. Single-tenant installations
-- keep everything in the tenant 'default'.

ALTER TABLE clients ADD COLUMN tenant_id varchar(64) NOT NULL DEFAULT 'default';
ALTER TABLE signing_keys ADD COLUMN tenant_id varchar(64) NOT NULL DEFAULT 'default';
ALTER TABLE login_sessions ADD COLUMN tenant_id varchar(64) NOT NULL DEFAULT 'default';
ALTER TABLE consent_grants ADD COLUMN tenant_id varchar(64) NOT NULL DEFAULT 'default';
ALTER TABLE device_codes ADD COLUMN tenant_id varchar(64) NOT NULL DEFAULT 'default';

-- Token rows take the tenant of their client, filled in by the next
-- migration. Rows written by 1.x servers while the upgrade runs get the
-- default, so the NOT NULL of the next migration holds for them too.
ALTER TABLE authorization_codes ADD COLUMN tenant_id varchar(64);
ALTER TABLE authorization_codes ALTER COLUMN tenant_id SET DEFAULT 'default';
ALTER TABLE access_tokens ADD COLUMN tenant_id varchar(64);
ALTER TABLE access_tokens ALTER COLUMN tenant_id SET DEFAULT 'default';
ALTER TABLE refresh_tokens ADD COLUMN tenant_id varchar(64);
ALTER TABLE refresh_tokens ALTER COLUMN tenant_id SET DEFAULT 'default';
