-- Idempotency-Key of the POST that created a message (null when the client sent none).
-- Unique, so a retried create finds the row of its first attempt instead of adding another;
-- NULLs are distinct, so messages created without a key never conflict.
ALTER TABLE messages ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX messages_idempotency_key_idx ON messages (idempotency_key);
