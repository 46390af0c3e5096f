-- gridbot schema, version 10: the deadline an approved 延期 protects a case until.
-- Until then the clock neither escalates the case nor takes its claim back, and any
-- window started later (escalation by hand, transfer, reopening) ends no earlier.
-- Cases extended before this version are left unprotected: which of their deadlines
-- was the approved one is not recorded.

ALTER TABLE cases ADD COLUMN extended_until TEXT;
