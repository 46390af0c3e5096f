-- gridbot schema, version 2 (PostgreSQL): the clock's bookkeeping on each case, and
-- scheduled jobs. Mirrors migrations/0002_deadlines.sql.

ALTER TABLE cases ADD COLUMN window_start timestamptz;
ALTER TABLE cases ADD COLUMN reminded_at timestamptz;
ALTER TABLE cases ADD COLUMN active_at timestamptz;
ALTER TABLE cases ADD COLUMN idle_warned_at timestamptz;
ALTER TABLE cases ADD COLUMN top_reminders integer NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN top_reminded_at timestamptz;
ALTER TABLE cases ADD COLUMN extension text;          -- JSON of a pending 延期 request
ALTER TABLE cases ADD COLUMN extensions integer NOT NULL DEFAULT 0;
-- The earliest instant the deadline sweep must look at the case. Only cases with a wake
-- are indexed, so finding what is due costs the same with a hundred cases as a million.
ALTER TABLE cases ADD COLUMN wake_at timestamptz;
CREATE INDEX cases_wake ON cases(wake_at) WHERE wake_at IS NOT NULL;

-- Recurring jobs (the daily digest): when each next runs. A worker claims a run by
-- moving next_run forward in the same transaction that does the work.
CREATE TABLE jobs (
    name        text PRIMARY KEY,
    next_run    timestamptz NOT NULL
);

UPDATE cases SET window_start = COALESCE(claimed_at, created_at),
                 active_at = claimed_at,
                 wake_at = updated_at
WHERE status IN ('new', 'assigned', 'claimed', 'reopened', 'resolved');
