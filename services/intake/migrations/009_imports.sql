-- Past cases brought from the city's former system (`python -m services.intake.imports`): the reference
-- they had there, so that importing a file twice changes nothing. Their events are in intake.events.
CREATE TABLE imported_cases (
    case_id     uuid PRIMARY KEY,
    procedure   text NOT NULL,
    reference   text NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (procedure, reference)
);
