-- workflow's view of each case: its step, its clock, who has it. Rebuilt from workflow.events if ever needed.
CREATE TABLE cases (
    case_id            uuid PRIMARY KEY,
    procedure          text NOT NULL,
    procedure_version  integer NOT NULL,
    service            text NOT NULL,
    step               text NOT NULL,
    version            integer NOT NULL,
    assignee           text,
    submitted_at       timestamptz NOT NULL,
    legal_deadline     date,
    clock_paused_since date,
    -- none, warned (deadline approaching recorded), passed (deadline passed recorded)
    deadline_state     text NOT NULL DEFAULT 'none',
    outcome            text,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_queue ON cases (service, legal_deadline) WHERE outcome IS NULL;
CREATE INDEX cases_deadlines ON cases (legal_deadline) WHERE outcome IS NULL AND clock_paused_since IS NULL;

-- Free text of an action (comment, reason): may name people, so it stays here, never on the bus.
CREATE TABLE notes (
    event_id uuid PRIMARY KEY REFERENCES events (event_id),
    comment  text,
    reason   text
);

CREATE TABLE idempotency_keys (
    key          text NOT NULL,
    agent        text NOT NULL,
    request_hash text NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent, key)
);

-- Every read of a citizen's personal data by an agent.
CREATE TABLE personal_data_reads (
    id      bigserial PRIMARY KEY,
    case_id uuid NOT NULL,
    agent   text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
