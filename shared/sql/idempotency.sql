-- A writer's answers to requests sent with an Idempotency-Key (`shared/idempotency.py`): a retry with the
-- same key gets the stored answer back, status and body, however late. `scope` says who sent the key and
-- what for (`submission`, `reply:<case_id>`, `action:<agent>:<case_id>`): the same key in two scopes is
-- two keys.
CREATE TABLE {schema}.idempotent_requests (
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    status       smallint NOT NULL,
    body         jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
