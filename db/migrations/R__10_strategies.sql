-- Strategies: a trader's optional tags on orders, fills and positions.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Creates a strategy for the acting user (app.user_id); the name is unique per trader.
CREATE OR REPLACE FUNCTION create_strategy(p_name text)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user     uuid := app_current_user();
    v_strategy strategies%ROWTYPE;
BEGIN
    IF v_user IS NULL THEN
        RETURN no_acting_user();
    ELSIF p_name IS NULL OR length(btrim(p_name)) NOT BETWEEN 1 AND 100 THEN
        RETURN validation_error('name', 'must be 1 to 100 characters');
    ELSIF NOT EXISTS (SELECT 1 FROM accounts WHERE user_id = v_user) THEN
        RETURN error_envelope('USER_NOT_FOUND', 'the acting user has no account');
    END IF;

    INSERT INTO strategies (user_id, name) VALUES (v_user, btrim(p_name))
    ON CONFLICT (user_id, name) DO NOTHING
    RETURNING * INTO v_strategy;
    IF NOT FOUND THEN
        RETURN validation_error('name', 'you already have a strategy with this name');
    END IF;

    RETURN envelope(true, NULL, NULL, 201, jsonb_build_object(
        'id', v_strategy.id, 'name', v_strategy.name,
        'created_at', to_char(v_strategy.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')));
END
$$;

REVOKE ALL ON FUNCTION create_strategy(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_strategy(text) TO orders_api;

RESET ROLE;
