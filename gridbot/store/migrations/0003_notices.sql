-- gridbot schema, version 3: notices and their deliveries in use.
-- Independent of 0002: it touches only the notices, deliveries and outbox tables.

-- The micro-grids a notice resolved to when it was written (JSON list), where it was
-- written (for the summary when its author has no private chat), when it finished.
ALTER TABLE notices ADD COLUMN microgrids TEXT NOT NULL DEFAULT '[]';
ALTER TABLE notices ADD COLUMN origin_platform TEXT;
ALTER TABLE notices ADD COLUMN origin_chat_id TEXT;
ALTER TABLE notices ADD COLUMN done_at TEXT;
ALTER TABLE notices ADD COLUMN cancelled_by TEXT;
CREATE INDEX notices_due ON notices(send_at) WHERE status = 'scheduled';
CREATE INDEX notices_sending ON notices(id) WHERE status = 'sending';

-- deliveries.status: queued, sending (a send has started), sent, acknowledged, failed,
-- unknown (the process died mid-send; not sent again by itself).
ALTER TABLE deliveries ADD COLUMN microgrid TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN sent_at TEXT;
ALTER TABLE deliveries ADD COLUMN acked_at TEXT;
CREATE INDEX deliveries_outbox ON deliveries(outbox_id);
CREATE INDEX deliveries_status ON deliveries(notice_id, status);
-- "收到" in a group finds the notice it answers, or the latest one sent there.
CREATE INDEX deliveries_message ON deliveries(platform, chat_id, platform_message_id);
CREATE INDEX deliveries_chat_sent ON deliveries(platform, chat_id, sent_at);

-- Who answered "收到" to which delivery; one row per person, however often they say it.
CREATE TABLE notice_acks (
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
    person_id   TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (delivery_id, person_id)
);
