-- gridbot schema, version 3 (PostgreSQL): notices and their deliveries in use.
-- Mirrors migrations/0003_notices.sql.

ALTER TABLE notices ADD COLUMN microgrids text NOT NULL DEFAULT '[]';
ALTER TABLE notices ADD COLUMN origin_platform text;
ALTER TABLE notices ADD COLUMN origin_chat_id text;
ALTER TABLE notices ADD COLUMN done_at timestamptz;
ALTER TABLE notices ADD COLUMN cancelled_by text;
CREATE INDEX notices_due ON notices(send_at) WHERE status = 'scheduled';
CREATE INDEX notices_sending ON notices(id) WHERE status = 'sending';

-- deliveries.status: queued, sending (a send has started), sent, acknowledged, failed,
-- unknown (the process died mid-send; not sent again by itself).
ALTER TABLE deliveries ADD COLUMN microgrid text NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN title text NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN sent_at timestamptz;
ALTER TABLE deliveries ADD COLUMN acked_at timestamptz;
CREATE INDEX deliveries_outbox ON deliveries(outbox_id);
CREATE INDEX deliveries_status ON deliveries(notice_id, status);
CREATE INDEX deliveries_message ON deliveries(platform, chat_id, platform_message_id);
CREATE INDEX deliveries_chat_sent ON deliveries(platform, chat_id, sent_at);

CREATE TABLE notice_acks (
    delivery_id bigint NOT NULL REFERENCES deliveries(id),
    person_id   text NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (delivery_id, person_id)
);
