-- pgshift:no-transaction
SET statement_timeout = '30s';
CREATE INDEX CONCURRENTLY orders_lookup_idx ON orders (account_id, created_at);
RESET statement_timeout;
