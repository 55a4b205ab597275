"""`audit_append()`, a PostgreSQL function that appends one event to the chain in one round trip.

A statement that waits for the chain head's lock keeps the snapshot it started with, so one
plain statement cannot both wait for the lock and read the organisations' previous links as
the writer before it committed them. Inside a PL/pgSQL function every statement takes a fresh
snapshot: the function locks the head, then reads each organisation's previous link, computes
the event's hash from the locked head (SHA-256 of the head's hash and the event's canonical
JSON, which the caller sends in three pieces around the sequence and the time that only the
lock decides) and its organisation links, inserts the event and its scope rows and moves the
head. Installed by migration 0005 on PostgreSQL; `audit.one_statement.audit_append` calls it.
It returns no row when the head row is missing (the caller then takes the portable path, which
knows how to recreate it).
"""

CREATE = r"""
CREATE OR REPLACE FUNCTION audit_append(
    p_event jsonb,
    p_scopes uuid[],
    p_before_time text,
    p_before_sequence text,
    p_rest text
) RETURNS TABLE (sequence bigint, occurred_at timestamptz, prev_hash text, hash text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    head audit_auditchainhead%ROWTYPE;
    event audit_auditevent%ROWTYPE;
    at timestamptz;
    org uuid;
    org_prev text;
BEGIN
    SELECT * INTO head FROM audit_auditchainhead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- Taken after the lock, so that times never go backwards along the chain.
    at := clock_timestamp();
    event := jsonb_populate_record(NULL::audit_auditevent, p_event);
    event.sequence := head.sequence + 1;
    event.occurred_at := at;
    event.prev_hash := head.hash;
    event.hash := encode(sha256(convert_to(
        head.hash || p_before_time
        || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || p_before_sequence || event.sequence::text || p_rest,
        'UTF8')), 'hex');
    INSERT INTO audit_auditevent SELECT event.*;
    FOREACH org IN ARRAY p_scopes LOOP
        SELECT s.org_hash INTO org_prev FROM audit_auditeventscope s
            WHERE s.organisation_id = org ORDER BY s.event_id DESC LIMIT 1;
        org_prev := COALESCE(org_prev, repeat('0', 64));
        INSERT INTO audit_auditeventscope (event_id, organisation_id, org_prev_hash, org_hash)
            VALUES (event.sequence, org, org_prev,
                    encode(sha256(convert_to(org_prev || event.hash, 'UTF8')), 'hex'));
    END LOOP;
    UPDATE audit_auditchainhead SET sequence = event.sequence, hash = event.hash WHERE id = 1;
    RETURN QUERY SELECT event.sequence, event.occurred_at, event.prev_hash::text,
        event.hash::text;
END
$$;
"""

DROP = "DROP FUNCTION IF EXISTS audit_append(jsonb, uuid[], text, text, text);"
