-- gridbot schema, version 7: the audit log of staff actions.
-- Independent of the other migrations: a new table. (Version 6 is left to the Telegram
-- work that was planned as 0004 and found 0004 and 0005 taken, as this one found 0005.)

-- Every staff action, one row each, written in the same transaction as the action:
-- chat commands by staff (claim, note, done, transfer, escalate, extend, approve,
-- refuse, return, reroute, bind, duty, link, notice, cancel_notice) from the engine's
-- dispatch, and the command line's own (forget). Case actions are also case_events;
-- this table is the one place to ask "who did what". The summary holds no free text
-- (notes and reasons stay in case_events), so `gridbot forget` never has to touch it.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor_id    TEXT NOT NULL,          -- a person id; '' for the command line as admin
    role        TEXT NOT NULL DEFAULT '',
    via         TEXT NOT NULL,          -- the platform, or 'cli'
    action      TEXT NOT NULL,          -- the command's name
    target      TEXT NOT NULL DEFAULT '',  -- '#12', 'M01', a person id, 'notice 3'
    summary     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_actor ON audit_log(actor_id, at);
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
