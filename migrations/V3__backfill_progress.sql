-- Progress of batched backfills. Each batch writes its row here in the
-- batch's own transaction, so the recorded key is exactly the end of the
-- last committed batch and a resumed run starts after it.

CREATE TABLE pgshift.backfill_progress (
    migration_id  text NOT NULL,
    step_index    integer NOT NULL,
    step_checksum text NOT NULL,
    -- The primary key of the last row of the last committed batch, each
    -- column as text; NULL before the first batch.
    last_key      text[],
    rows_scanned  bigint NOT NULL DEFAULT 0,
    rows_updated  bigint NOT NULL DEFAULT 0,
    batches       bigint NOT NULL DEFAULT 0,
    -- The last batch, which has no upper bound, committed.
    finished      boolean NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, step_index)
);
