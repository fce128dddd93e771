-- Verification that reaches outside the database and grows with new rows only.
--   Chain heads: each account's last execution-log seq and row_hash and its last audit row (id, balance, margin) are
--   published to the write-once archive container on a schedule (the chain-heads job reads chain_heads()). An owner
--   who rewrites history and recomputes every hash changes a published head, and published_head_mismatches() names it.
--   Checkpoints: verify_execution_log_chains() and verify_balance_audit_chains() (the orphan scan's chain checks) check
--   the rows after each account's chain checkpoint and move the checkpoint to the account's head when they verify.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- One NDJSON line per account: the heads of its two chains, as the chain-heads job publishes them. An account whose
-- audit rows were all archived has its ledger start (the checkpoint at its last archived row) as its audit head.
CREATE OR REPLACE FUNCTION chain_heads()
    RETURNS TABLE (user_id uuid, line text)
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    SELECT a.user_id,
           jsonb_build_object(
               'user_id', a.user_id,
               'execution_log', jsonb_build_object('seq', coalesce(e.seq, 0),
                                                   'row_hash', encode(coalesce(e.row_hash, execution_log_genesis_hash()), 'hex')),
               'audit', jsonb_build_object('id', coalesce(b.id, st.last_audit_id, 0),
                                           'balance_after', trim_scale(coalesce(b.balance_after, st.balance, 0)),
                                           'margin_after', trim_scale(coalesce(b.margin_after, st.used_margin, 0))))::text
    FROM accounts a
    LEFT JOIN LATERAL (SELECT x.seq, x.row_hash FROM execution_logs x WHERE x.user_id = a.user_id ORDER BY x.seq DESC LIMIT 1) e ON true
    LEFT JOIN LATERAL (SELECT r.id, r.balance_after, r.margin_after FROM balance_audit_log r WHERE r.user_id = a.user_id ORDER BY r.id DESC LIMIT 1) b ON true
    LEFT JOIN LATERAL ledger_start(a.user_id) st ON true
    ORDER BY a.user_id
$$;

-- Published heads (an array of chain_heads() lines as jsonb) that the database no longer matches: the execution-log row
-- at the published seq is missing or has another row_hash; the audit row at the published id is missing (and was
-- never archived) or says another balance or margin; or the account is gone.
CREATE OR REPLACE FUNCTION published_head_mismatches(p_heads jsonb)
    RETURNS TABLE (user_id uuid, chain text, "position" bigint, problem text)
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    WITH published AS (
        SELECT h.user_id,
               (h.execution_log ->> 'seq')::bigint AS seq, h.execution_log ->> 'row_hash' AS row_hash,
               (h.audit ->> 'id')::bigint AS audit_id, (h.audit ->> 'balance_after')::numeric AS balance_after,
               (h.audit ->> 'margin_after')::numeric AS margin_after
        FROM jsonb_to_recordset(coalesce(p_heads, '[]')) AS h(user_id uuid, execution_log jsonb, audit jsonb)
    )
    SELECT p.user_id, 'account', 0::bigint, 'the account of published heads is missing'
    FROM published p
    WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = p.user_id)
    UNION ALL
    SELECT p.user_id, 'execution_log', p.seq,
           CASE WHEN e.seq IS NULL THEN format('the row published with row_hash %s is missing', p.row_hash)
                ELSE format('row_hash %s, published %s', encode(e.row_hash, 'hex'), p.row_hash) END
    FROM published p
    LEFT JOIN execution_logs e ON e.user_id = p.user_id AND e.seq = p.seq
    WHERE p.seq > 0 AND EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = p.user_id)
      AND (e.seq IS NULL OR encode(e.row_hash, 'hex') <> p.row_hash)
    UNION ALL
    SELECT p.user_id, 'balance_audit', p.audit_id,
           CASE WHEN r.id IS NULL THEN 'the row published is missing and was never archived'
                ELSE format('balance %s and margin %s after it, published %s and %s', trim_scale(r.balance_after),
                            trim_scale(r.margin_after), trim_scale(p.balance_after), trim_scale(p.margin_after)) END
    FROM published p
    LEFT JOIN balance_audit_log r ON r.user_id = p.user_id AND r.id = p.audit_id
    WHERE p.audit_id > 0 AND EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = p.user_id)
      AND (r.id IS NULL AND p.audit_id > coalesce((SELECT max(c.last_audit_id) FROM ledger_checkpoints c WHERE c.user_id = p.user_id), 0)
           OR r.balance_after <> p.balance_after OR r.margin_after <> p.margin_after)
$$;

-- validate_atomic_execution_integrity and one check more, published_chain_head: the acting user's chains against the
-- heads last published outside the database (p_published, from the archive: {blob_name, published_at, head}, or
-- {unavailable: reason} when the archive could not be read, or NULL when nothing has been published yet).
CREATE OR REPLACE FUNCTION validate_transaction_integrity(p_transaction_id uuid, p_published jsonb DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user    uuid := app_current_user();
    v_result  jsonb := validate_atomic_execution_integrity(p_transaction_id);
    v_head    jsonb := p_published -> 'head';
    v_passed  boolean := true;
    v_detail  text;
BEGIN
    IF NOT coalesce((v_result ->> 'success')::boolean, false) THEN
        RETURN v_result;
    END IF;

    IF p_published IS NULL OR jsonb_typeof(p_published) <> 'object' THEN
        v_detail := 'not compared: no chain heads have been published yet';
    ELSIF p_published ? 'unavailable' THEN
        v_passed := false;
        v_detail := 'the published chain heads could not be read: ' || (p_published ->> 'unavailable');
    ELSIF v_head IS NULL OR jsonb_typeof(v_head) <> 'object' OR (v_head ->> 'user_id')::uuid IS DISTINCT FROM v_user THEN
        v_detail := format('not compared: %s holds no heads of this account yet', p_published ->> 'blob_name');
    ELSE
        SELECT format('%s %s: %s', m.chain, m."position", m.problem) INTO v_detail
        FROM published_head_mismatches(jsonb_build_array(v_head)) m
        WHERE m.user_id = v_user
        ORDER BY m.chain
        LIMIT 1;
        v_passed := v_detail IS NULL;
        v_detail := coalesce(v_detail, format('matches %s, published %s', p_published ->> 'blob_name', p_published ->> 'published_at'));
    END IF;

    v_result := jsonb_set(v_result, '{data,checks}', (v_result #> '{data,checks}')
        || jsonb_build_object('name', 'published_chain_head', 'passed', v_passed, 'detail', v_detail));
    RETURN jsonb_set(v_result, '{data,valid}', to_jsonb((v_result #>> '{data,valid}')::boolean AND v_passed));
END
$$;

REVOKE ALL ON FUNCTION chain_heads() FROM PUBLIC;
REVOKE ALL ON FUNCTION published_head_mismatches(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION validate_transaction_integrity(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chain_heads() TO orders_maintenance;
GRANT EXECUTE ON FUNCTION published_head_mismatches(jsonb) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION validate_transaction_integrity(uuid, jsonb) TO orders_api, orders_maintenance;
-- The chain checks hash rows as the verifier.
GRANT EXECUTE ON FUNCTION execution_log_hash(bytea, uuid, bigint, uuid, text, text, text, uuid, jsonb, timestamptz),
                          execution_log_genesis_hash()
    TO orders_verifier;

RESET ROLE;

-- The verification path runs as orders_verifier: it reads every account's chains and writes only chain_checkpoints.
-- orders_maintenance may only call these functions, and cannot choose where a checkpoint goes.
SET LOCAL ROLE orders_verifier;

-- The execution-log chain breaks after each account's checkpoint; every account without one has its checkpoint moved
-- to its current head. Breaks and heads are read in one statement, so no row is passed over unverified.
CREATE OR REPLACE FUNCTION verify_execution_log_chains()
    RETURNS TABLE (user_id uuid, seq bigint, problem text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH breaks AS (
        SELECT b.user_id, b.seq, b.problem FROM execution_log_chain_breaks(NULL) b
    ), heads AS (
        SELECT a.user_id, h.seq, h.row_hash
        FROM accounts a
        CROSS JOIN LATERAL (SELECT e.seq, e.row_hash FROM execution_logs e WHERE e.user_id = a.user_id ORDER BY e.seq DESC LIMIT 1) h
    ), advanced AS (
        INSERT INTO chain_checkpoints AS cp (user_id, execution_log_seq, execution_log_hash)
        SELECT h.user_id, h.seq, h.row_hash
        FROM heads h
        WHERE NOT EXISTS (SELECT 1 FROM breaks b WHERE b.user_id = h.user_id)
        ON CONFLICT (user_id) DO UPDATE
            SET execution_log_seq = EXCLUDED.execution_log_seq, execution_log_hash = EXCLUDED.execution_log_hash, verified_at = now()
            WHERE cp.execution_log_seq < EXCLUDED.execution_log_seq
        RETURNING 1
    )
    SELECT b.user_id, b.seq, b.problem FROM breaks b ORDER BY b.user_id, b.seq;
END
$$;

-- The same for the balance audit chain: breaks after each account's ledger start, then the checkpoint moved to the
-- account's last audit row (its id, and the balance and margin it left).
CREATE OR REPLACE FUNCTION verify_balance_audit_chains()
    RETURNS TABLE (user_id uuid, audit_id bigint, problem text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH breaks AS (
        SELECT b.user_id, b.audit_id, b.problem FROM balance_audit_chain_breaks(NULL) b
    ), heads AS (
        SELECT a.user_id, h.id, h.balance_after, h.margin_after
        FROM accounts a
        CROSS JOIN LATERAL (SELECT r.id, r.balance_after, r.margin_after FROM balance_audit_log r
                            WHERE r.user_id = a.user_id ORDER BY r.id DESC LIMIT 1) h
    ), advanced AS (
        INSERT INTO chain_checkpoints AS cp (user_id, audit_id, audit_balance, audit_margin)
        SELECT h.user_id, h.id, h.balance_after, h.margin_after
        FROM heads h
        WHERE NOT EXISTS (SELECT 1 FROM breaks b WHERE b.user_id = h.user_id)
        ON CONFLICT (user_id) DO UPDATE
            SET audit_id = EXCLUDED.audit_id, audit_balance = EXCLUDED.audit_balance, audit_margin = EXCLUDED.audit_margin, verified_at = now()
            WHERE cp.audit_id < EXCLUDED.audit_id
        RETURNING 1
    )
    SELECT b.user_id, b.audit_id, b.problem FROM breaks b ORDER BY b.user_id, b.audit_id;
END
$$;

REVOKE ALL ON FUNCTION verify_execution_log_chains() FROM PUBLIC;
REVOKE ALL ON FUNCTION verify_balance_audit_chains() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION verify_execution_log_chains() TO orders_maintenance;
GRANT EXECUTE ON FUNCTION verify_balance_audit_chains() TO orders_maintenance;

RESET ROLE;
