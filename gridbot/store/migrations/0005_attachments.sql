-- gridbot schema, version 5: evidence travels with messages; chats that refuse the bot.
-- Independent of the other migrations: new columns with defaults.

-- Photos, voice notes and files sent after a message's text, as a JSON list of
-- {"kind", "platform", "ref"} (gridbot.domain.Attachment).
ALTER TABLE outbox ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';

-- Set when the platform refuses the chat for good (the user blocked the bot, the bot
-- was removed, the chat is gone), so nobody is sought there any more; cleared when a
-- message comes from the chat again.
ALTER TABLE chats ADD COLUMN unreachable_at TEXT;
ALTER TABLE chats ADD COLUMN unreachable_reason TEXT NOT NULL DEFAULT '';
