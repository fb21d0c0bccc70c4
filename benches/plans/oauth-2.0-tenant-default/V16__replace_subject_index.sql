-- Subject lookups are now always scoped to a tenant.

CREATE INDEX access_tokens_tenant_subject_idx ON access_tokens (tenant_id, subject);
DROP INDEX access_tokens_subject_idx;
