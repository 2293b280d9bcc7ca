-- Messages posted by users. Content is stored trimmed; the api enforces 1..=2000 characters,
-- the database keeps the same bound as a last line of defence.
CREATE TABLE messages (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    content    TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT messages_content_length CHECK (char_length(content) BETWEEN 1 AND 2000)
);
