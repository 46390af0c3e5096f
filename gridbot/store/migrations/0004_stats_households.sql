-- gridbot schema, version 4: statistics and the household ledger.
-- Independent of the other migrations: a new index and a new table.

-- Reports and /stats select the cases reported in a period.
CREATE INDEX cases_created ON cases(created_at);

-- Households of each micro-grid (住户台账), as `gridbot import` read them from the office's
-- sheet. Keyed by address: re-importing the same sheet changes nothing.
CREATE TABLE households (
    microgrid   TEXT NOT NULL,
    building    TEXT NOT NULL,          -- 楼栋
    entrance    TEXT NOT NULL DEFAULT '',  -- 单元
    room        TEXT NOT NULL,          -- 房号
    head        TEXT NOT NULL DEFAULT '',  -- 户主
    phone       TEXT NOT NULL DEFAULT '',
    members     INTEGER,
    tags        TEXT NOT NULL DEFAULT '[]',
    note        TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (microgrid, building, entrance, room)
);
