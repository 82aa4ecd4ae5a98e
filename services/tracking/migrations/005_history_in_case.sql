-- A case's history lives in its own row: a lookup reads one row (the case and its history, as the
-- baseline's primary-key select does), and folding an event is one statement (the case's change and its
-- history line together). Entries are kept in the order they were folded; readers sort them by time.
CREATE TYPE history_entry AS (event_id uuid, step text, kind text, occurred_at timestamptz);
ALTER TABLE cases ADD COLUMN history history_entry[] NOT NULL DEFAULT '{}';
UPDATE cases c SET history = h.entries
FROM (
    SELECT case_id, array_agg(ROW(event_id, step, kind, occurred_at)::history_entry ORDER BY occurred_at, event_id) AS entries
    FROM history GROUP BY case_id
) h
WHERE h.case_id = c.case_id;
DROP TABLE history;
