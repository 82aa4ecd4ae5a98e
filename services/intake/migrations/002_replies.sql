-- A citizen's answers to a request (documents, information), sent with their tracking code.
-- Personal data, like the applicant: it stays here; the bus only hears that an answer arrived.
CREATE TABLE replies (
    reply_id    uuid PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (case_id),
    message     text NOT NULL,
    documents   jsonb NOT NULL,  -- https links, as the citizen gave them
    received_at timestamptz NOT NULL
);
CREATE INDEX replies_by_case ON replies (case_id, received_at);

-- A retried reply with the same Idempotency-Key answers with the reply it recorded the first time.
-- Keys are the citizen's own, so they only need to be unique within their case.
CREATE TABLE reply_idempotency_keys (
    case_id      uuid NOT NULL REFERENCES cases (case_id),
    key          text NOT NULL,
    request_hash text NOT NULL,
    reply_id     uuid NOT NULL REFERENCES replies (reply_id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, key)
);
