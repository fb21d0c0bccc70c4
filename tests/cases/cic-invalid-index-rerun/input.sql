-- pgshift:no-transaction
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tokens_digest_key ON tokens (digest);
