-- What a street report adds to a case (any case has them, most leave them empty): the service it went
-- to and its public facts (category, district, H3 cell of about 100 m: never the point), for the
-- Open311 requests; the report it duplicates, whose progress its page then shows; and the reporter's
-- "is it really fixed?" question about its latest "done" (the workflow version of the step change into
-- it): when it was asked (`FixCheckDue`) and the answer (`FixChecked`: true fixed, false not fixed).
ALTER TABLE cases
    ADD COLUMN service      text,
    ADD COLUMN facts        jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN duplicate_of uuid,
    ADD COLUMN done_version integer,
    ADD COLUMN fix_asked_at timestamptz,
    ADD COLUMN fix_answer   boolean;
CREATE INDEX cases_by_procedure_submitted ON cases (procedure, submitted_at DESC);
