-- Benchmark variant of the example's V11: the token tables' tenant_id gets
-- its default when it is added, not in V12, so that rows a 1.x application
-- inserts between V11 and V12 are not NULL and V12's SET NOT NULL passes.
-- A constant default is a catalog-only change from PostgreSQL 11.

ALTER TABLE clients ADD COLUMN tenant_id varchar(64) NOT NULL DEFAULT 'default';
ALTER TABLE signing_keys ADD COLUMN tenant_id varchar(64) NOT NULL DEFAULT 'default';
ALTER TABLE login_sessions ADD COLUMN tenant_id varchar(64) NOT NULL DEFAULT 'default';
ALTER TABLE consent_grants ADD COLUMN tenant_id varchar(64) NOT NULL DEFAULT 'default';
ALTER TABLE device_codes ADD COLUMN tenant_id varchar(64) NOT NULL DEFAULT 'default';

-- Token rows take the tenant of their client, filled in by the next
-- migration.
ALTER TABLE authorization_codes ADD COLUMN tenant_id varchar(64) DEFAULT 'default';
ALTER TABLE access_tokens ADD COLUMN tenant_id varchar(64) DEFAULT 'default';
ALTER TABLE refresh_tokens ADD COLUMN tenant_id varchar(64) DEFAULT 'default';
