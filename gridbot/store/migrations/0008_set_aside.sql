-- gridbot schema, version 8: messages set aside.
-- Independent of the other migrations: a new table.

-- An incoming message whose handling raised (a bug, a damaged row it reads) is kept here,
-- in a transaction of its own, instead of being left with the platform: the messages
-- behind it flow at once, and this one is tried again later on its own (a worker source,
-- gridbot/setaside.py) until it is handled (the row goes) or has failed too often (the
-- row stays, next_try NULL, for someone to look at). The message itself is the engine's
-- Incoming as JSON; sender_id lets `gridbot forget` find a resident's.
CREATE TABLE set_aside (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    sender_id   TEXT NOT NULL,
    incoming    TEXT NOT NULL,          -- the Incoming, JSON
    error       TEXT NOT NULL DEFAULT '',  -- the last failure, one line
    attempts    INTEGER NOT NULL DEFAULT 1,
    next_try    TEXT,                   -- NULL: tried too often, kept for a person to see
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (platform, chat_id, message_id)
);
CREATE INDEX set_aside_due ON set_aside(next_try) WHERE next_try IS NOT NULL;
