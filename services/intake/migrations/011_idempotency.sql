-- Idempotency-Keys move to `idempotent_requests` (shared/sql/idempotency.sql), the table every writer
-- uses, which stores the answer given. Reply keys keep their scope (their case) and their answer.
-- Submission keys recorded before name only their case: intake rebuilds the answer from it on a replay.
INSERT INTO idempotent_requests (scope, key, request_hash, status, body, created_at)
SELECT 'submission', key, request_hash, 201, jsonb_build_object('migrated_case_id', case_id), created_at
FROM idempotency_keys;

INSERT INTO idempotent_requests (scope, key, request_hash, status, body, created_at)
SELECT 'reply:' || k.case_id, k.key, k.request_hash, 202,
       jsonb_build_object(
           'reply_id', r.reply_id,
           'received_at', to_char(r.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
       ),
       k.created_at
FROM reply_idempotency_keys k JOIN replies r USING (reply_id);

-- The old table stays for one release: a replica of the previous release may still use it during a
-- rolling update. A later migration drops it.
