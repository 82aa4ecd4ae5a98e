-- Erasure of a case's personal data (`erasure.py`): on request (an admin, for the citizen's right to
-- erasure) or at the end of its procedure's retention period. One row per erased case, written in the
-- erasure's transaction with the `CaseErased` event; `reference` is the admin's ticket or letter number,
-- never a reason written about the person, and it stays here (the event says only request/retention).
CREATE TABLE erasures (
    case_id    uuid PRIMARY KEY REFERENCES cases (case_id),
    reason     text NOT NULL CHECK (reason IN ('request', 'retention')),
    reference  text,
    erased_by  text,  -- the admin's subject (`sub`), for a request
    erased_at  timestamptz NOT NULL
);

-- The stored files of erased cases, deleted from the object store after the erasure's transaction
-- commits (the store shares no transaction with PostgreSQL): a row stays until its object is gone, and
-- the retention sweep deletes what an unavailable store left behind.
CREATE TABLE erased_objects (
    stored_key text PRIMARY KEY,
    case_id    uuid NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The sweep's question: decided cases whose retention has ended, not yet erased.
CREATE INDEX decisions_by_date ON decisions (decided_at);
