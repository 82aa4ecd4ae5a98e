-- Where each case stands in workflow, folded from its `StepChanged` events (a later version replaces an
-- earlier one, a redelivered one changes nothing): a street report's reporter answers "is it really
-- fixed?" about its latest "done" (`done_version`), and open reports nearby are suggested before a new
-- one is made. `decisions` (010) keeps the first decision, for the rating.
CREATE TABLE steps (
    case_id      uuid PRIMARY KEY,
    step         text NOT NULL,
    outcome      text,
    version      integer NOT NULL,
    done_version integer,
    duplicate_of uuid
);

-- The reporter's answer, once per "done". A comment is free text (it may name people): it stays here.
CREATE TABLE fix_checks (
    case_id      uuid NOT NULL REFERENCES cases (case_id),
    done_version integer NOT NULL,
    fixed        boolean NOT NULL,
    comment      text,
    checked_at   timestamptz NOT NULL,
    PRIMARY KEY (case_id, done_version)
);
