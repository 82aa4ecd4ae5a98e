-- Whether the citizen rated the service (intake's `CaseRated`): the page then thanks them instead of
-- asking again. The rating itself is stats' business, and the comment never leaves intake.
ALTER TABLE cases ADD COLUMN rated boolean NOT NULL DEFAULT false;
