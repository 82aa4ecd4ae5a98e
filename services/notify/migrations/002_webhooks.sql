-- Webhooks: the city's other systems subscribe to case events and get signed deliveries (Standard
-- Webhooks). The fold queues one delivery per matching subscription and event, in its transaction
-- (`webhooks.enqueue`); the dispatcher sends them (`webhooks.run_dispatcher`).

CREATE TABLE notify.webhook_subscriptions (
    subscription_id  uuid PRIMARY KEY,
    url              text NOT NULL,
    description      text,
    -- Filters: NULL takes every value; a list takes the events whose procedure, type or case's service
    -- is in it.
    procedures       text[],
    event_types      text[],
    services         text[],
    -- Signing secrets (`whsec_` + base64). After a rotation the previous one signs too until
    -- `previous_secret_until`, so a receiver can switch without missing a delivery.
    secret           text NOT NULL,
    previous_secret  text,
    previous_secret_until timestamptz,
    -- active: delivered; paused (by an admin, or retries used up): queued, not sent, until resumed;
    -- disabled (the target answered 410 Gone): nothing more is queued.
    state            text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'disabled')),
    state_reason     text,
    state_changed_at timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per subscription and event. A case's deliveries to a subscription go out in stream order: the
-- dispatcher only takes a case's earliest pending one (`webhook_deliveries_heads`).
CREATE TABLE notify.webhook_deliveries (
    delivery_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id  uuid NOT NULL REFERENCES notify.webhook_subscriptions ON DELETE CASCADE,
    event_id         uuid NOT NULL REFERENCES notify.events (event_id),
    stream_seq       bigint NOT NULL,
    case_id          uuid NOT NULL,
    -- pending: to send (again); delivered: a 2xx came back; failed: retries used up (the subscription was
    -- paused; resuming it sends it again).
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    -- Tries started, the one in flight included.
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- While a replica sends it: until when no other replica may, and which claim may record the outcome
    -- (a replay meanwhile clears it, so a late outcome does not overwrite the replay).
    lease_until      timestamptz,
    claim_id         uuid,
    last_status_code integer,
    last_error       text,
    last_duration_ms integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_heads ON notify.webhook_deliveries (subscription_id, case_id, stream_seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event ON notify.webhook_deliveries (event_id);

-- Every try and what came of it, for `GET /v1/subscriptions/{id}`.
CREATE TABLE notify.webhook_attempts (
    attempt_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id      bigint NOT NULL REFERENCES notify.webhook_deliveries ON DELETE CASCADE,
    subscription_id  uuid NOT NULL,
    event_id         uuid NOT NULL,
    case_id          uuid NOT NULL,
    stream_seq       bigint NOT NULL,
    attempted_at     timestamptz NOT NULL DEFAULT now(),
    status_code      integer,
    duration_ms      integer NOT NULL,
    error            text,
    outcome          text NOT NULL
);
CREATE INDEX webhook_attempts_subscription ON notify.webhook_attempts (subscription_id, attempt_id DESC);
