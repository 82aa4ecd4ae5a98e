-- Cases workflow decided (folded from its StepChanged events): only those can be rated.
CREATE TABLE decisions (
    case_id    uuid PRIMARY KEY,
    outcome    text NOT NULL,
    decided_at timestamptz NOT NULL
);

-- One rating per case. The comment is free text (it may name people): it stays here, never on the bus.
CREATE TABLE ratings (
    case_id  uuid PRIMARY KEY REFERENCES cases (case_id),
    rating   smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment  text,
    rated_at timestamptz NOT NULL
);
