-- The order a case's notifications are resolved in, and so its messages created and sent in: their
-- events' order in the stream. Their `created_at` is the fold's transaction time, the same for every
-- notification folded in one batch.
ALTER TABLE notify.notifications ADD COLUMN stream_seq bigint;
UPDATE notify.notifications n SET stream_seq = e.stream_seq FROM notify.events e WHERE e.event_id = n.event_id;
CREATE INDEX notifications_case_order ON notify.notifications (case_id, stream_seq) WHERE state = 'pending';
