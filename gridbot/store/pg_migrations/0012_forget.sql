-- gridbot schema, version 12 (PostgreSQL): `gridbot forget` reaches every row of a resident.
-- Independent of the other migrations: it only redefines the two append-only guards.

-- Forget takes a resident out of every table (gridbot/store/forget.py): on their cases'
-- events it replaces the words, renames the actor to an anonymous id and drops evidence
-- references from the data, and it renames their person id in the audit log. The guards
-- step aside for exactly that, in a transaction that said SET LOCAL gridbot.forgetting =
-- 'on' (no DDL, so no lock that would stop other workers): an event keeps its case, time
-- and kind, an audit row everything but the person ids. Nothing else may change them.
CREATE OR REPLACE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('gridbot.forgetting', true) = 'on'
            AND NEW.id = OLD.id AND NEW.case_number = OLD.case_number AND NEW.at = OLD.at
            AND NEW.kind = OLD.kind THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'case_events is append-only';
END;
$$;

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('gridbot.forgetting', true) = 'on'
            AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.role = OLD.role
            AND NEW.via = OLD.via AND NEW.action = OLD.action AND NEW.summary = OLD.summary THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
