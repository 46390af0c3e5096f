-- gridbot schema, version 9: heartbeats of the duties a running gridbot holds.
-- Independent of the other migrations: a new table. (Version 8 is left to work on
-- issue 14 that was under way at the same time.)

-- One row per duty (send:telegram, poll:telegram, digest …): which process holds it and
-- when it last said so. A process holding a duty writes beat_at every few seconds
-- (gridbot/duties.py) and released_at when it gives the duty up; a row whose beat_at
-- is old was left by a process that died. Commands that hand work to a running bot
-- (gridbot notice) read it to know at once whether anybody will do it. detail is what
-- the holder says about itself (the Telegram bot's username for send:telegram).
CREATE TABLE heartbeats (
    duty        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    beat_at     TEXT NOT NULL,
    released_at TEXT,
    detail      TEXT NOT NULL DEFAULT ''
);
