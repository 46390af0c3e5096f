-- gridbot schema, version 10 (PostgreSQL): the deadline an approved 延期 protects a case
-- until. Mirrors migrations/0010_extended_until.sql.

ALTER TABLE cases ADD COLUMN extended_until timestamptz;
