-- A reader's bookkeeping: which events it folded (so a redelivery changes nothing), how far in the
-- stream each of its consumers got, and the messages it gave up on.
CREATE TABLE {schema}.folded_events (
    event_id   uuid PRIMARY KEY,
    stream_seq bigint NOT NULL,
    folded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.consumer_positions (
    consumer   text PRIMARY KEY,
    stream_seq bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.dead_letters (
    stream_seq  bigint PRIMARY KEY,
    subject     text NOT NULL,
    consumer    text NOT NULL,
    reason      text NOT NULL,
    body        bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
