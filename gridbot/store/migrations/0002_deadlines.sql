-- gridbot schema, version 2: the clock's bookkeeping on each case, and scheduled jobs.

ALTER TABLE cases ADD COLUMN window_start TEXT;
ALTER TABLE cases ADD COLUMN reminded_at TEXT;
ALTER TABLE cases ADD COLUMN active_at TEXT;
ALTER TABLE cases ADD COLUMN idle_warned_at TEXT;
ALTER TABLE cases ADD COLUMN top_reminders INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN top_reminded_at TEXT;
ALTER TABLE cases ADD COLUMN extension TEXT;          -- JSON of a pending 延期 request
ALTER TABLE cases ADD COLUMN extensions INTEGER NOT NULL DEFAULT 0;
-- The earliest instant the deadline sweep must look at the case (a reminder, a missed
-- window, an idle claim, an unanswered 回访). Only cases with a wake are indexed, so
-- finding what is due costs the same with a hundred cases as with a million.
ALTER TABLE cases ADD COLUMN wake_at TEXT;
CREATE INDEX cases_wake ON cases(wake_at) WHERE wake_at IS NOT NULL;

-- Recurring jobs (the daily digest): when each next runs. A worker claims a run by
-- moving next_run forward in the same transaction that does the work.
CREATE TABLE jobs (
    name        TEXT PRIMARY KEY,
    next_run    TEXT NOT NULL
);

-- Cases from before this version: the first sweep looks at each open or resolved one,
-- takes whatever step is due and works out its next wake-up from the configuration.
UPDATE cases SET window_start = COALESCE(claimed_at, created_at),
                 active_at = claimed_at,
                 wake_at = updated_at
WHERE status IN ('new', 'assigned', 'claimed', 'reopened', 'resolved');
