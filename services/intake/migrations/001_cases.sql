-- intake is the only place that holds a case's personal data: the applicant and the full form.
CREATE TABLE cases (
    case_id              uuid PRIMARY KEY,
    tracking_code        text NOT NULL UNIQUE,
    tracking_code_digest text NOT NULL UNIQUE,
    procedure            text NOT NULL,
    procedure_version    integer NOT NULL,
    channel              text NOT NULL,
    data                 jsonb NOT NULL,
    submitted_at         timestamptz NOT NULL,
    legal_deadline       date
);

CREATE TABLE applicants (
    case_id  uuid PRIMARY KEY REFERENCES cases (case_id),
    name     text NOT NULL,
    email    text,
    phone    text,
    language text NOT NULL
);

-- A retried POST with the same Idempotency-Key answers with the case it created the first time.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    request_hash text NOT NULL,
    case_id      uuid NOT NULL REFERENCES cases (case_id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
