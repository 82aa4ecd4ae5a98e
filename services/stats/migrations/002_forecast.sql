-- When each open case entered each step: at its decision, the time from each entry to the decision joins
-- the bins `remaining:<step>`, from which the forecast of a case at that step is read. Rows of decided
-- cases are deleted: the table holds the open cases only.
CREATE TABLE step_entries (
    case_id    uuid NOT NULL REFERENCES cases (case_id),
    step       text NOT NULL,
    entered_at timestamptz NOT NULL,
    PRIMARY KEY (case_id, step, entered_at)
);
