-- gridbot schema, version 4 (PostgreSQL): statistics and the household ledger.
-- Mirrors migrations/0004_stats_households.sql.

CREATE INDEX cases_created ON cases(created_at);

CREATE TABLE households (
    microgrid   text NOT NULL,
    building    text NOT NULL,             -- 楼栋
    entrance    text NOT NULL DEFAULT '',  -- 单元
    room        text NOT NULL,             -- 房号
    head        text NOT NULL DEFAULT '',  -- 户主
    phone       text NOT NULL DEFAULT '',
    members     integer,
    tags        text NOT NULL DEFAULT '[]',
    note        text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (microgrid, building, entrance, room)
);
