-- Where each street report is, for "already reported nearby" (`nearby.py`): one row per case of a
-- procedure with a located field (`public: district`), written with the case in `api._submit`'s
-- transaction. A table rather than an expression index on `cases.data`: the field names come from the
-- procedure's definition (Python), not from SQL; the columns are real numbers (no cast of JSON text at
-- query time); and the index holds street reports only, never the other procedures' cases.
-- The point is as private as the address it came from: it never leaves intake, and an erasure of the
-- case's data deletes this row too.
CREATE TABLE report_places (
    case_id   uuid PRIMARY KEY REFERENCES cases (case_id) ON DELETE CASCADE,
    procedure text NOT NULL,
    category  text NOT NULL,  -- the value of the procedure's category (its public choice field), or ''
    latitude  float8 NOT NULL,
    longitude float8 NOT NULL,
    district  text
);
-- A box of about 100 m: the procedure and category, then the latitude band; the longitude is read from
-- the index too.
CREATE INDEX report_places_nearby ON report_places (procedure, category, latitude) INCLUDE (longitude);

-- The reports submitted before this table: every case whose place was located in the city's districts
-- (its `cell` is there), under the one located procedure there is (`location`, `category`).
INSERT INTO report_places (case_id, procedure, category, latitude, longitude, district)
SELECT case_id, procedure, coalesce(data ->> 'category', ''),
       (data -> 'location' ->> 'latitude')::float8, (data -> 'location' ->> 'longitude')::float8,
       data -> 'location' ->> 'district'
FROM cases
WHERE jsonb_typeof(data -> 'location' -> 'latitude') = 'number'
  AND jsonb_typeof(data -> 'location' -> 'longitude') = 'number'
  AND data -> 'location' ? 'cell';
