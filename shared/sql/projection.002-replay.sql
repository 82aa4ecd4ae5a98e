-- Dead letters can be replayed (`python -m shared.deadletters replay`): the running consumer picks up the
-- requests, and keeps the outcome.
ALTER TABLE {schema}.dead_letters
    ADD COLUMN replay_requested_at timestamptz,
    ADD COLUMN replayed_at timestamptz;
