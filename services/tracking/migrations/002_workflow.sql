-- What workflow's events add to a case: how far workflow's own version of it got (events are applied in
-- that order, each once), the legal clock and the outcome.
ALTER TABLE cases
    ADD COLUMN workflow_version integer NOT NULL DEFAULT 0,
    ADD COLUMN clock_paused     boolean NOT NULL DEFAULT false,
    ADD COLUMN outcome          text;

-- The version a reader sees (and `?min_version=` waits for): 1 once submitted, then one more per
-- workflow event. Derived, so it can never disagree with workflow_version.
ALTER TABLE cases DROP COLUMN version;
ALTER TABLE cases ADD COLUMN version integer GENERATED ALWAYS AS (workflow_version + 1) STORED;
