-- pgshift:no-transaction
SET lock_timeout = '3s';
CREATE INDEX CONCURRENTLY events_account_id_idx ON events (account_id);
