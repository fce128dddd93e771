-- What the timer jobs need: orphan checks, and the one retention path that may delete audit rows.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Rows whose parent is gone and open positions with no quantity. Foreign keys and CHECKs make these
-- impossible unless someone bypassed them (session_replication_role, dropped constraints): the scan
-- proves they did not.
CREATE OR REPLACE FUNCTION orphan_rows()
    RETURNS TABLE (check_name text, table_name text, row_key jsonb)
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    SELECT 'order_without_account', 'orders', jsonb_build_object('user_id', o.user_id, 'id', o.id)
    FROM orders o WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = o.user_id)
    UNION ALL
    SELECT 'order_without_position', 'orders', jsonb_build_object('user_id', o.user_id, 'id', o.id, 'position_id', o.position_id)
    FROM orders o
    WHERE o.position_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM positions p WHERE p.user_id = o.user_id AND p.id = o.position_id)
    UNION ALL
    SELECT 'fill_without_order', 'fills', jsonb_build_object('user_id', f.user_id, 'id', f.id, 'order_id', f.order_id)
    FROM fills f WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = f.user_id AND o.id = f.order_id)
    UNION ALL
    SELECT 'position_without_account', 'positions', jsonb_build_object('user_id', p.user_id, 'id', p.id)
    FROM positions p WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = p.user_id)
    UNION ALL
    SELECT 'execution_log_without_order', 'execution_logs', jsonb_build_object('user_id', e.user_id, 'seq', e.seq, 'order_id', e.order_id)
    FROM execution_logs e WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = e.user_id AND o.id = e.order_id)
    UNION ALL
    SELECT 'audit_row_without_account', 'balance_audit_log', jsonb_build_object('user_id', b.user_id, 'id', b.id)
    FROM balance_audit_log b WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = b.user_id)
    UNION ALL
    SELECT 'open_position_with_zero_quantity', 'positions', jsonb_build_object('user_id', p.user_id, 'id', p.id, 'symbol', p.symbol)
    FROM positions p WHERE p.status = 'open' AND p.quantity = 0
$$;

-- Orders stuck before completion; the orphan scan fails each through rollback_order_execution.
CREATE OR REPLACE FUNCTION stuck_orders(p_older_than interval, p_limit integer)
    RETURNS TABLE (user_id uuid, order_id uuid, status text, created_at timestamptz)
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    SELECT o.user_id, o.id, o.status, o.created_at
    FROM orders o
    WHERE o.status IN ('pending', 'executing') AND o.created_at < now() - p_older_than
    ORDER BY o.created_at
    LIMIT p_limit
$$;

-- The archive form of a row: one NDJSON line (jsonb text, keys in jsonb order, timestamps in UTC).
-- Used both to write the archive and, inside archive_audit_rows, to prove the archive matches what is deleted.
CREATE OR REPLACE FUNCTION audit_archive_rows(p_table text, p_after_id bigint, p_cutoff timestamptz, p_limit integer)
    RETURNS TABLE (id bigint, line text)
    LANGUAGE plpgsql STABLE
    SET search_path = trading, pg_temp
    SET TimeZone = 'UTC'
AS $$
BEGIN
    IF p_table = 'balance_audit_log' THEN
        RETURN QUERY
            SELECT b.id, to_jsonb(b)::text FROM balance_audit_log b
            WHERE b.id > p_after_id AND b.created_at < p_cutoff
            ORDER BY b.id LIMIT p_limit;
    ELSIF p_table = 'error_log' THEN
        RETURN QUERY
            SELECT e.id, to_jsonb(e)::text FROM error_log e
            WHERE e.id > p_after_id AND e.created_at < p_cutoff
            ORDER BY e.id LIMIT p_limit;
    ELSE
        RAISE EXCEPTION 'retention covers balance_audit_log and error_log only, not %', p_table
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

REVOKE ALL ON FUNCTION orphan_rows() FROM PUBLIC;
REVOKE ALL ON FUNCTION stuck_orders(interval, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_archive_rows(text, bigint, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orphan_rows() TO orders_maintenance;
GRANT EXECUTE ON FUNCTION stuck_orders(interval, integer) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION audit_archive_rows(text, bigint, timestamptz, integer) TO orders_maintenance, orders_archiver;

RESET ROLE;

-- The retention path runs as orders_archiver: the only role that may delete (archived) audit and error
-- rows or write archive records and ledger checkpoints. orders_maintenance may only call this function.
SET LOCAL ROLE orders_archiver;

-- Records an uploaded and verified archive batch and deletes exactly its rows, in one transaction:
--   1. recomputes row count and sha256 of the NDJSON of the rows in (first_id..last_id, created before
--      cutoff) and refuses unless both match the manifest the caller uploaded;
--   2. inserts the audit_archives row (whose created_txid is what lets the delete triggers pass);
--   3. for balance_audit_log, writes each account's ledger checkpoint at its last archived row;
--   4. deletes the rows and checks the count once more.
CREATE OR REPLACE FUNCTION archive_audit_rows(
        p_maintenance_run_id bigint,
        p_table text,
        p_first_id bigint,
        p_last_id bigint,
        p_cutoff timestamptz,
        p_row_count integer,
        p_sha256 text,
        p_blob_name text)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
    SET TimeZone = 'UTC'
AS $$
DECLARE
    v_count       integer;
    v_sha256      text;
    v_archive_id  bigint;
    v_checkpoints integer := 0;
    v_deleted     integer;
BEGIN
    IF p_table NOT IN ('balance_audit_log', 'error_log') THEN
        RETURN validation_error('table', 'must be balance_audit_log or error_log');
    ELSIF p_first_id IS NULL OR p_last_id IS NULL OR p_first_id > p_last_id THEN
        RETURN validation_error('first_id', 'must be at most last_id');
    ELSIF p_cutoff IS NULL OR p_cutoff > now() THEN
        RETURN validation_error('cutoff', 'must be in the past');
    -- The retention floor (R__11): whatever cutoff the caller passes, nothing younger than the floor is deleted.
    ELSIF p_cutoff > retention_floor_cutoff(p_table) THEN
        RETURN validation_error('cutoff', format('must be at least %s ago: the database keeps %s rows that long',
                                                 retention_floor(p_table), p_table));
    ELSIF p_blob_name IS NULL OR length(p_blob_name) NOT BETWEEN 1 AND 1024 THEN
        RETURN validation_error('blob_name', 'must be 1 to 1024 characters');
    END IF;

    -- A batch must not straddle the cutoff: a younger row inside the id range would be left behind the
    -- archived range for good (ids follow insert order, created_at the inserting transaction's start).
    IF p_table = 'balance_audit_log'
       AND EXISTS (SELECT 1 FROM balance_audit_log WHERE id BETWEEN p_first_id AND p_last_id AND created_at >= p_cutoff)
       OR p_table = 'error_log'
       AND EXISTS (SELECT 1 FROM error_log WHERE id BETWEEN p_first_id AND p_last_id AND created_at >= p_cutoff) THEN
        RETURN validation_error('last_id', 'the range holds rows newer than the cutoff; end the batch before them');
    END IF;

    SELECT count(*), encode(sha256(convert_to(coalesce(string_agg(r.line || E'\n', '' ORDER BY r.id), ''), 'UTF8')), 'hex')
    INTO v_count, v_sha256
    FROM audit_archive_rows(p_table, p_first_id - 1, p_cutoff, 2147483647) r
    WHERE r.id <= p_last_id;
    IF v_count <> p_row_count OR v_sha256 <> p_sha256 THEN
        RETURN error_envelope('ARCHIVE_MISMATCH',
            format('the archive holds %s rows with sha256 %s but the database has %s rows with sha256 %s; nothing was deleted',
                   p_row_count, p_sha256, v_count, v_sha256));
    END IF;

    INSERT INTO audit_archives (table_name, blob_name, first_id, last_id, row_count, sha256, cutoff, maintenance_run_id)
    VALUES (p_table, p_blob_name, p_first_id, p_last_id, p_row_count, p_sha256, p_cutoff, p_maintenance_run_id)
    RETURNING id INTO v_archive_id;

    IF p_table = 'balance_audit_log' THEN
        INSERT INTO ledger_checkpoints (user_id, archive_id, last_audit_id, balance, used_margin)
        SELECT DISTINCT ON (b.user_id) b.user_id, v_archive_id, b.id, b.balance_after, b.margin_after
        FROM balance_audit_log b
        WHERE b.id BETWEEN p_first_id AND p_last_id AND b.created_at < p_cutoff
        ORDER BY b.user_id, b.id DESC;
        GET DIAGNOSTICS v_checkpoints = ROW_COUNT;
        DELETE FROM balance_audit_log WHERE id BETWEEN p_first_id AND p_last_id AND created_at < p_cutoff;
    ELSE
        DELETE FROM error_log WHERE id BETWEEN p_first_id AND p_last_id AND created_at < p_cutoff;
    END IF;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    IF v_deleted <> p_row_count THEN
        RAISE EXCEPTION 'deleted % rows but archived %', v_deleted, p_row_count USING ERRCODE = 'data_exception';
    END IF;

    RETURN envelope(true, NULL, NULL, 200, jsonb_build_object(
        'archive_id', v_archive_id,
        'table', p_table,
        'blob_name', p_blob_name,
        'first_id', p_first_id,
        'last_id', p_last_id,
        'deleted', v_deleted,
        'checkpoints', v_checkpoints));
END
$$;

REVOKE ALL ON FUNCTION archive_audit_rows(bigint, text, bigint, bigint, timestamptz, integer, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION archive_audit_rows(bigint, text, bigint, bigint, timestamptz, integer, text, text) TO orders_maintenance;

RESET ROLE;
