-- The journal of blue-green phases, on blue. Builds before this migration
-- created these tables at the start of each phase with IF NOT EXISTS, so a
-- database may already have them; IF NOT EXISTS keeps this migration from
-- failing there, and the ADD COLUMN lines bring such tables up to date.

CREATE TABLE IF NOT EXISTS pgshift.bluegreen_phases (
    plan_name  text NOT NULL,
    phase      text NOT NULL,
    green      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_name, phase)
);

-- Set by `pgshift confirm-cutover`, which removes capture from blue. Until
-- then the phase is waiting for the operator, and switching traffic back
-- to blue is the rollback.
ALTER TABLE pgshift.bluegreen_phases
    ADD COLUMN IF NOT EXISTS confirmed_at timestamptz,
    ADD COLUMN IF NOT EXISTS confirmed_by text;

-- One row per stage of a phase; `runs` counts how often the stage started.
CREATE TABLE IF NOT EXISTS pgshift.bluegreen_stages (
    plan_name   text NOT NULL,
    phase       text NOT NULL,
    stage       text NOT NULL,
    status      text NOT NULL CHECK (status IN ('started', 'done', 'failed')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    runs        integer NOT NULL DEFAULT 1,
    error       text,
    detail      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (plan_name, phase, stage)
);
