-- pgshift's own state. Runs inside the pgshift schema, which ensure_schema
-- creates before refinery runs this file.

CREATE TABLE pgshift.runs (
    id              bigserial PRIMARY KEY,
    plan_name       text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    pgshift_version text NOT NULL,
    client_host     text DEFAULT host(inet_client_addr()),
    client_user     text NOT NULL DEFAULT current_user,
    os_user         text
);

CREATE TABLE pgshift.applied_migrations (
    migration_id text PRIMARY KEY,
    plan_version text NOT NULL,
    name         text NOT NULL,
    checksum     text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    duration_ms  bigint NOT NULL,
    run_id       bigint REFERENCES pgshift.runs (id)
);

-- One row per step and run. A step that is retried within a run keeps its
-- row and counts attempts; a step that a later run resumes gets a new row.
CREATE TABLE pgshift.step_journal (
    id            bigserial PRIMARY KEY,
    run_id        bigint NOT NULL REFERENCES pgshift.runs (id),
    migration_id  text NOT NULL,
    step_index    integer NOT NULL,
    step_checksum text NOT NULL,
    status        text NOT NULL
                  CHECK (status IN ('started', 'done', 'failed', 'interrupted')),
    attempts      integer NOT NULL DEFAULT 1,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    error         text
);

-- A step is done at most once: resume skips done steps, and this index
-- makes a second done row for the same step fail instead of passing
-- silently.
CREATE UNIQUE INDEX step_journal_done_once
    ON pgshift.step_journal (migration_id, step_index)
    WHERE status = 'done';

CREATE INDEX step_journal_by_migration
    ON pgshift.step_journal (migration_id, step_index);
