-- A street report's latest "done" (a final step whose procedure asks the reporter, some days later,
-- whether it is really fixed): when, at which version, and whether the reporter was asked (`none`,
-- `asked`). "Not fixed" reopens the report; the next "done" asks again.
ALTER TABLE cases
    ADD COLUMN done_at         timestamptz,
    ADD COLUMN done_version    integer,
    ADD COLUMN fix_check_state text NOT NULL DEFAULT 'none';
CREATE INDEX cases_fix_checks ON cases (done_at) WHERE fix_check_state = 'none' AND done_at IS NOT NULL;
