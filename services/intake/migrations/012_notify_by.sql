-- How the applicant wants to hear of their case's changes (notify reads it on the internal API at send
-- time). Cases submitted before: e-mail where there is an address, else SMS.
ALTER TABLE applicants ADD COLUMN notify_by text[];
UPDATE applicants SET notify_by = CASE WHEN email IS NOT NULL THEN ARRAY['email'] ELSE ARRAY['sms'] END;
ALTER TABLE applicants ALTER COLUMN notify_by SET NOT NULL;
