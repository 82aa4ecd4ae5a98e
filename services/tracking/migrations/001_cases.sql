-- tracking's read model: what a tracking code shows, and nothing personal.
CREATE TABLE cases (
    case_id              uuid PRIMARY KEY,
    tracking_code_digest text NOT NULL UNIQUE,
    procedure            text NOT NULL,
    procedure_version    integer NOT NULL,
    step                 text NOT NULL,
    step_since           timestamptz NOT NULL,
    submitted_at         timestamptz NOT NULL,
    legal_deadline       date,
    version              integer NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE history (
    event_id    uuid PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (case_id),
    step        text NOT NULL,
    kind        text NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX history_by_case ON history (case_id, occurred_at);
