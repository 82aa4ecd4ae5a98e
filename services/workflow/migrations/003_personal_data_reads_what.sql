-- What each read of personal data showed: `applicant` (contact details), `form` (the submitted fields),
-- `replies` (the citizen's answers). Reads logged before this column only showed the contact details;
-- the default keeps a replica of the previous release able to log during a rolling update.
ALTER TABLE personal_data_reads ADD COLUMN what text[] NOT NULL DEFAULT '{applicant}';
