-- Street reports (a procedure whose place publishes its district: `Procedure.located`): one row per
-- report, with what its published figures need (services/stats/reports.py), read exactly by
-- services/stats/reports_queries.py. No personal data: a category, a district, dates.
-- A read model folded before this migration has these tables empty: rebuild it
-- (`python -m services.stats.rebuild`) to fill them from the stream's history.
CREATE TABLE reports (
    case_id        uuid PRIMARY KEY REFERENCES cases (case_id),
    procedure      text NOT NULL,
    category       text NOT NULL DEFAULT '',
    district       text NOT NULL DEFAULT '',
    submitted_at   timestamptz NOT NULL,
    -- The city's commitment (the procedure's `legal_deadline`): the date to act by.
    legal_deadline date,
    -- The final step the report is in now; NULL while it is open (new, or reopened by its reporter).
    final_step     text,
    -- Its first entry into a step whose outcome is `accepted` ("service fait"), and whether that was on
    -- or before the commitment date (NULL: no date known). A reopened report done again keeps these.
    first_done_at  timestamptz,
    done_in_time   boolean
);
CREATE INDEX reports_submitted ON reports (procedure, submitted_at);
CREATE INDEX reports_done ON reports (procedure, first_done_at) WHERE first_done_at IS NOT NULL;
CREATE INDEX reports_open ON reports (procedure) WHERE final_step IS NULL;

-- A report's first entry into each final step it reached (done, transferred, rejected, duplicate...):
-- each final step counts a report once, in the month it first entered it.
CREATE TABLE report_finals (
    case_id    uuid NOT NULL REFERENCES reports (case_id),
    step       text NOT NULL,
    entered_at timestamptz NOT NULL,
    PRIMARY KEY (case_id, step)
);
CREATE INDEX report_finals_entered ON report_finals (entered_at);

-- The reporter's answers to "is it really fixed?", one per "done" of the report (`done_version`).
CREATE TABLE report_fix_checks (
    case_id      uuid NOT NULL REFERENCES reports (case_id),
    done_version integer NOT NULL,
    fixed        boolean NOT NULL,
    checked_at   timestamptz NOT NULL,
    PRIMARY KEY (case_id, done_version)
);
CREATE INDEX report_fix_checks_checked ON report_fix_checks (checked_at);
