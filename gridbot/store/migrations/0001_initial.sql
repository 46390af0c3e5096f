-- gridbot schema, version 1. Instants are fixed-width ISO-8601 UTC text
-- ("2026-11-21T09:00:00.000000Z"), so text order is time order.

CREATE TABLE org_units (
    code        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('subdistrict', 'community', 'grid', 'microgrid')),
    name        TEXT NOT NULL,
    parent      TEXT REFERENCES org_units(code),
    tags        TEXT NOT NULL DEFAULT '[]',
    position    INTEGER NOT NULL DEFAULT 0     -- order in the configuration
);

CREATE TABLE people (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    unit        TEXT NOT NULL,
    phone       TEXT NOT NULL DEFAULT '',
    address     TEXT NOT NULL DEFAULT '',
    locale      TEXT NOT NULL DEFAULT '',
    auto        INTEGER NOT NULL DEFAULT 0,
    active      INTEGER NOT NULL DEFAULT 1,
    position    INTEGER                        -- order in the configuration; NULL for auto
);
CREATE INDEX people_name ON people(name);
CREATE INDEX people_role_unit ON people(role, unit);

CREATE TABLE rosters (
    microgrid   TEXT NOT NULL,
    person_id   TEXT NOT NULL,
    position    INTEGER NOT NULL,      -- 0 primary, 1.. backups in order
    PRIMARY KEY (microgrid, person_id)
);
CREATE TABLE shifts (
    id          INTEGER PRIMARY KEY,
    microgrid   TEXT NOT NULL,
    person_id   TEXT NOT NULL,
    days        TEXT NOT NULL,         -- JSON list of weekday numbers, 0 = Monday
    start_time  TEXT NOT NULL,         -- local "HH:MM"
    end_time    TEXT NOT NULL
);
CREATE INDEX shifts_microgrid ON shifts(microgrid);

CREATE TABLE duty (
    person_id   TEXT PRIMARY KEY,
    off         INTEGER NOT NULL,
    until       TEXT,
    changed_at  TEXT NOT NULL
);

CREATE TABLE accounts (
    platform        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    display_name    TEXT NOT NULL DEFAULT '',
    person_id       TEXT REFERENCES people(id),
    private_chat_id TEXT,
    linked_at       TEXT,
    PRIMARY KEY (platform, user_id)
);
CREATE INDEX accounts_person ON accounts(person_id);

CREATE TABLE chats (
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    microgrid   TEXT,
    bound_by    TEXT,
    bound_at    TEXT,
    PRIMARY KEY (platform, chat_id)
);
CREATE INDEX chats_microgrid ON chats(microgrid);

CREATE TABLE link_codes (
    code_hash   TEXT PRIMARY KEY,
    person_id   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    used_by     TEXT
);

CREATE TABLE cases (
    number          INTEGER PRIMARY KEY AUTOINCREMENT,
    microgrid       TEXT NOT NULL,
    reporter_id     TEXT NOT NULL,
    origin_platform TEXT NOT NULL,
    origin_chat_id  TEXT NOT NULL,
    text            TEXT NOT NULL,
    category        TEXT NOT NULL,
    priority        TEXT NOT NULL,
    status          TEXT NOT NULL,
    level           INTEGER NOT NULL DEFAULT 0,
    assignee_id     TEXT,
    claim_by        TEXT,
    resolve_by      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    claimed_at      TEXT,
    resolved_at     TEXT,
    closed_at       TEXT,
    rating          INTEGER,
    rating_text     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX cases_assignee ON cases(assignee_id, status);
CREATE INDEX cases_reporter ON cases(reporter_id, status);
CREATE INDEX cases_microgrid ON cases(microgrid, status);
-- Due work is found through these, so its cost does not grow with closed cases.
CREATE INDEX cases_claim_due ON cases(claim_by) WHERE status IN ('new', 'assigned', 'reopened');
CREATE INDEX cases_resolve_due ON cases(resolve_by) WHERE status = 'claimed';

CREATE TABLE case_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_number INTEGER NOT NULL REFERENCES cases(number),
    at          TEXT NOT NULL,
    actor_id    TEXT,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL DEFAULT '',
    data        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX case_events_case ON case_events(case_number, id);
CREATE TRIGGER case_events_append_only_update BEFORE UPDATE ON case_events
BEGIN SELECT RAISE(ABORT, 'case_events is append-only'); END;
CREATE TRIGGER case_events_append_only_delete BEFORE DELETE ON case_events
BEGIN SELECT RAISE(ABORT, 'case_events is append-only'); END;

-- Every incoming platform message handled, so a redelivered one does nothing twice.
CREATE TABLE inbox (
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    handled_at  TEXT NOT NULL,
    PRIMARY KEY (platform, chat_id, message_id)
);

CREATE TABLE notices (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    text        TEXT NOT NULL,
    status      TEXT NOT NULL,          -- scheduled, sending, done, cancelled
    send_at     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE deliveries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    notice_id           INTEGER NOT NULL REFERENCES notices(id),
    platform            TEXT NOT NULL,
    chat_id             TEXT NOT NULL,
    status              TEXT NOT NULL,  -- queued, sending, sent, failed, acknowledged
    outbox_id           INTEGER,
    platform_message_id TEXT,
    error               TEXT NOT NULL DEFAULT '',
    updated_at          TEXT NOT NULL,
    UNIQUE (notice_id, platform, chat_id)
);

CREATE TABLE outbox (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key           TEXT NOT NULL UNIQUE,
    platform            TEXT NOT NULL,
    chat_id             TEXT NOT NULL,
    person_id           TEXT,
    case_number         INTEGER,
    text                TEXT NOT NULL,
    fmt                 TEXT NOT NULL DEFAULT 'plain',
    buttons             TEXT NOT NULL DEFAULT '[]',
    reply_to            TEXT,
    thread_id           TEXT,
    status              TEXT NOT NULL DEFAULT 'queued',  -- queued, sending, sent, failed
    attempts            INTEGER NOT NULL DEFAULT 0,
    not_before          TEXT NOT NULL,
    lease_until         TEXT,
    created_at          TEXT NOT NULL,
    sent_at             TEXT,
    platform_message_id TEXT,
    error               TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox(not_before) WHERE status IN ('queued', 'sending');
