-- stats' read model. Per case, only what durations need (no personal data, no tracking code); per
-- procedure × month × district, pre-aggregated figures that add up into quarters and years. District ''
-- is every district together. A query reads the aggregates, never the cases (except the open ones).
CREATE TABLE cases (
    case_id          uuid PRIMARY KEY,
    procedure        text NOT NULL,
    district         text NOT NULL DEFAULT '',
    channel          text NOT NULL,
    submitted_at     timestamptz NOT NULL,
    legal_deadline   date,
    step             text NOT NULL,
    step_since       timestamptz NOT NULL,
    -- The legal clock: stopped while the case waits for the citizen.
    paused_since     timestamptz,
    paused_seconds   double precision NOT NULL DEFAULT 0,
    decided_at       timestamptz,
    decision         text,
    workflow_version integer NOT NULL DEFAULT 0
);
CREATE INDEX cases_open ON cases (procedure, submitted_at) WHERE decided_at IS NULL;

-- Volumes: submitted, channel:<channel>, decided:<decision>, deadline:known, deadline:met, open_at_end,
-- rating:<1-5>.
CREATE TABLE counts (
    procedure text NOT NULL,
    month     date NOT NULL,
    district  text NOT NULL,
    measure   text NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (procedure, month, district, measure)
);

-- Durations as DDSketch bins (services/stats/domain.py): elapsed, legal, step:<code>, backlog_age (cases
-- open at the month's end that were decided since; the still-open ones are read live).
CREATE TABLE bins (
    procedure text NOT NULL,
    month     date NOT NULL,
    district  text NOT NULL,
    measure   text NOT NULL,
    bin       integer NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (procedure, month, district, measure, bin)
);

-- Sums, for means: of durations in seconds, and of ratings.
CREATE TABLE sums (
    procedure text NOT NULL,
    month     date NOT NULL,
    district  text NOT NULL,
    measure   text NOT NULL,
    n         bigint NOT NULL,
    total     double precision NOT NULL,
    PRIMARY KEY (procedure, month, district, measure)
);
