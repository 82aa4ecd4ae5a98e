-- notify's own record of the stream: every event it folded (CloudEvents with no personal data), so
-- webhooks can be delivered, and replayed from a time or a stream position, without going back to NATS.
CREATE TABLE notify.events (
    event_id   uuid PRIMARY KEY,
    stream_seq bigint NOT NULL UNIQUE,
    case_id    uuid NOT NULL,
    procedure  text NOT NULL,
    type       text NOT NULL,
    service    text,
    time       timestamptz NOT NULL,
    envelope   jsonb NOT NULL
);
CREATE INDEX events_time ON notify.events (time);
CREATE INDEX events_case ON notify.events (case_id, stream_seq);

-- A case's service and procedure version, learnt from its first event (CaseSubmitted, CaseImported or
-- CaseOpened): webhook filters by service, and the step definitions, need them for every later event.
CREATE TABLE notify.cases (
    case_id           uuid PRIMARY KEY,
    procedure         text NOT NULL,
    procedure_version integer NOT NULL,
    service           text NOT NULL
);

-- One row per event that calls for telling the citizen something (receipt, documents requested,
-- decision...): written in the fold's transaction, so an event is never noticed twice.
CREATE TABLE notify.notifications (
    notification_id uuid PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    case_id         uuid NOT NULL,
    procedure       text NOT NULL,
    procedure_version integer NOT NULL,
    kind            text NOT NULL,
    -- What the message says beyond the case file: step codes, outcome, dates. Never personal data.
    context         jsonb NOT NULL,
    -- pending: the citizen's channels are not known yet; resolved: one message per channel below;
    -- opted-out: the citizen stopped this case's messages; no-contact: no address for any channel chosen.
    state           text NOT NULL DEFAULT 'pending',
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text
);
CREATE INDEX notifications_pending ON notify.notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_case ON notify.notifications (case_id, created_at);

-- One message per notification and channel, with its delivery status (GOV.UK Notify's words): created,
-- sending, sent, delivered (where the provider tells), temporary-failure (retried), permanent-failure.
-- The address is never stored: it is fetched from intake at each try.
CREATE TABLE notify.messages (
    message_id      uuid PRIMARY KEY,
    notification_id uuid NOT NULL REFERENCES notify.notifications (notification_id),
    case_id         uuid NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('email', 'sms')),
    language        text NOT NULL,
    status          text NOT NULL DEFAULT 'created',
    reason          text,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    provider_ref    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    delivered_at    timestamptz,
    UNIQUE (notification_id, channel)
);
CREATE INDEX messages_due ON notify.messages (next_attempt_at)
    WHERE status IN ('created', 'temporary-failure', 'sending');
CREATE INDEX messages_case ON notify.messages (case_id, created_at);
CREATE INDEX messages_provider_ref ON notify.messages (provider_ref) WHERE provider_ref IS NOT NULL;

-- Cases whose citizen asked for no more messages (the link in each message).
CREATE TABLE notify.opt_outs (
    case_id    uuid PRIMARY KEY,
    opted_out_at timestamptz NOT NULL DEFAULT now()
);
