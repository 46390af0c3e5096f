-- gridbot schema, version 5 (PostgreSQL): evidence travels with messages; chats that
-- refuse the bot. Mirrors migrations/0005_attachments.sql.

-- Photos, voice notes and files sent after a message's text, as a JSON list of
-- {"kind", "platform", "ref"} (gridbot.domain.Attachment).
ALTER TABLE outbox ADD COLUMN attachments text NOT NULL DEFAULT '[]';

-- Set when the platform refuses the chat for good; cleared when a message comes from
-- the chat again.
ALTER TABLE chats ADD COLUMN unreachable_at timestamptz;
ALTER TABLE chats ADD COLUMN unreachable_reason text NOT NULL DEFAULT '';
