-- pgshift:no-transaction
CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);
CREATE INDEX CONCURRENTLY orders_account_id_idx ON orders (account_id);
