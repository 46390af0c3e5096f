-- gridbot schema, version 9 (PostgreSQL): heartbeats of the duties a running gridbot
-- holds. Mirrors migrations/0009_heartbeats.sql. (Version 8 is left to work on issue 14
-- that was under way at the same time, as there.)

-- On PostgreSQL a duty is an advisory lock (gridbot/duties.py), which only its holder's
-- session can see; the row tells every other command whether anybody holds it.
CREATE TABLE heartbeats (
    duty        text PRIMARY KEY,
    holder      text NOT NULL,
    beat_at     timestamptz NOT NULL,
    released_at timestamptz,
    detail      text NOT NULL DEFAULT ''
);
