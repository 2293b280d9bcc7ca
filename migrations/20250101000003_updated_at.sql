-- Time of the last change of a message. Existing rows were never edited: their
-- updated_at is their created_at. The api's UPDATE statement sets it explicitly.
ALTER TABLE messages ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now();
UPDATE messages SET updated_at = created_at;
