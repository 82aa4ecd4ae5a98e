-- Citizens' files (a plan, a photo, a document sent with a reply). The bytes are in the object store
-- under `stored_key`; this row says whose they are. The form's data names a file field's files by their
-- ids (`data.plans: ["doc_..."]`). Personal data: never on the bus, read by agents through workflow only.
CREATE TABLE documents (
    document_id  text PRIMARY KEY,
    case_id      uuid NOT NULL REFERENCES cases (case_id),
    reply_id     uuid REFERENCES replies (reply_id),  -- sent with a reply, not with the form
    field        text NOT NULL,  -- the form's file field, or `documents` for a reply
    filename     text NOT NULL,  -- as sent, sanitised, with the extension of its real type
    content_type text NOT NULL,  -- read from the content, never from the name
    size         bigint NOT NULL,
    sha256       text NOT NULL,  -- of the stored bytes (images: once their metadata is gone)
    stored_key   text NOT NULL UNIQUE,
    position     integer NOT NULL,  -- its place among the files sent in the same request
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_by_case ON documents (case_id, created_at, position);
