-- Soft delete: a deleted message keeps its row with the time of deletion.
ALTER TABLE messages ADD COLUMN deleted_at TIMESTAMPTZ;

-- Listing reads live messages newest first, paginated by id (keyset).
CREATE INDEX messages_live_id_idx ON messages (id DESC) WHERE deleted_at IS NULL;
