-- A writer's events, and the outbox the relay publishes to JetStream in order.
-- Written in the same transaction as the state change they record.
CREATE TABLE {schema}.events (
    event_id    uuid PRIMARY KEY,
    case_id     uuid NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    type        text NOT NULL,
    subject     text NOT NULL,
    envelope    jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, version)
);

CREATE TABLE {schema}.outbox (
    position     bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE REFERENCES {schema}.events (event_id),
    published_at timestamptz,
    stream_seq   bigint
);
CREATE INDEX outbox_unpublished ON {schema}.outbox (position) WHERE published_at IS NULL;
