-- Which sender's batch holds a message. A sender leases a batch, then marks each message `sending` (and
-- counts the try) only if its claim still holds, just before the provider is called: so `sending` means
-- "may have gone out", and a message whose lease ran out while it waited in a slow batch is left to the
-- sender that claimed it next.
ALTER TABLE notify.messages ADD COLUMN claim_id uuid;
