-- The backlog of a month is folded once the fold has seen the month end: per procedure, the last month
-- sealed so (services/stats/projection.py). Its `open_at_end` and `backlog_age` then hold the cases still
-- open as well as those decided since, and a query reads them instead of every open case. NULL: none yet
-- (a read model folded before this migration: the first fold of the procedure seals its past months).
CREATE TABLE sealed_months (
    procedure text PRIMARY KEY,
    through   date
);

-- Queries read one district's bins over a range of months: in that order, with the count beside the key,
-- they are read from the index alone.
ALTER TABLE bins DROP CONSTRAINT bins_pkey;
ALTER TABLE bins ADD PRIMARY KEY (procedure, district, month, measure, bin) INCLUDE (n);

-- The open cases' ages for the month under way are binned in SQL (services/stats/queries.py), in whole
-- microseconds, from the index alone, for one district or all.
ALTER TABLE cases ADD COLUMN submitted_us bigint NOT NULL
    GENERATED ALWAYS AS ((extract(epoch FROM submitted_at - '1970-01-01 00:00:00+00'::timestamptz) * 1000000)::bigint) STORED;
DROP INDEX cases_open;
CREATE INDEX cases_open ON cases (procedure, submitted_at) INCLUDE (district, submitted_us) WHERE decided_at IS NULL;

-- Running totals of the durations of `domain.RUNNING` (the time to decision, the steps): for each month
-- up to the last one sealed, the bins of every month until then. A period of many months reads the totals
-- at its ends (less the one before it starts) rather than each of its months.
CREATE TABLE bins_to_date (
    procedure text NOT NULL,
    district  text NOT NULL,
    month     date NOT NULL,
    measure   text NOT NULL,
    bin       integer NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (procedure, district, month, measure, bin) INCLUDE (n)
);
