-- Idempotency-Keys move to `idempotent_requests` (shared/sql/idempotency.sql), the table every writer
-- uses. A key is now scoped to its agent and its case: the same key on two cases is two keys.
INSERT INTO idempotent_requests (scope, key, request_hash, status, body, created_at)
SELECT 'action:' || agent || ':' || (response ->> 'case_id'), key, request_hash, 200, response, created_at
FROM idempotency_keys;

-- The old table stays for one release: a replica of the previous release may still use it during a
-- rolling update. A later migration drops it.
