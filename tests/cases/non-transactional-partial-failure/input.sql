-- pgshift:no-transaction
ALTER TABLE orders ADD COLUMN fulfilled_at timestamptz;
CREATE INDEX CONCURRENTLY orders_fulfilled_at_idx ON orders (fulfilled_at);
UPDATE schema_flags SET value = 'on' WHERE name = 'fulfilment';
