-- gridbot schema, version 11: report offers (登记为报事？).
-- Independent of the other migrations: a new table.

-- Words the bot offered to log as a report: urgent words said in a group without 报事, or
-- any plain message in a private chat. The offer's button is a command naming the row
-- (`/file 17`, Telegram's callback data holds 64 bytes), so the words wait here. An offer
-- is spent once (case_number: the case it became or joined, and its text is then blanked,
-- since the case holds it); every offer is deleted a day after it was made, and
-- `gridbot forget` deletes a resident's (person_id) at once.
CREATE TABLE report_offers (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at   TEXT NOT NULL,
    platform     TEXT NOT NULL,          -- where it was said, and where it may be used
    chat_id      TEXT NOT NULL,
    person_id    TEXT NOT NULL,          -- who said it ('~platform:user' for a newcomer)
    text         TEXT NOT NULL,
    attachments  TEXT NOT NULL DEFAULT '[]',
    urgent       INTEGER NOT NULL DEFAULT 0,
    case_number  INTEGER,                -- once used: the case it became or joined
    used_by      TEXT,                   -- once used: who pressed (the reporter)
    used_at      TEXT
);
CREATE INDEX report_offers_chat ON report_offers(platform, chat_id, created_at);
CREATE INDEX report_offers_person ON report_offers(person_id);
CREATE INDEX report_offers_created ON report_offers(created_at);
