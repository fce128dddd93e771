-- Strategies: a trader's optional tags on orders, fills and positions.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Creates a strategy for the acting user (app.user_id); the name is unique per trader. Creating one the trader
-- already has answers it (200, the same id) instead of 201: the request names all there is of a strategy, so a
-- repeat, such as the server's own retry after a lost answer, ends in the same state and learns its id.
CREATE OR REPLACE FUNCTION create_strategy(p_name text)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user     uuid := app_current_user();
    v_strategy strategies%ROWTYPE;
    v_created  boolean;
BEGIN
    IF v_user IS NULL THEN
        RETURN no_acting_user();
    ELSIF p_name IS NULL OR length(btrim(p_name)) NOT BETWEEN 1 AND 100 THEN
        RETURN validation_error('name', 'must be 1 to 100 characters');
    ELSIF NOT EXISTS (SELECT 1 FROM accounts WHERE user_id = v_user) THEN
        RETURN no_account();
    END IF;

    INSERT INTO strategies (user_id, name) VALUES (v_user, btrim(p_name))
    ON CONFLICT (user_id, name) DO NOTHING
    RETURNING * INTO v_strategy;
    v_created := FOUND;
    IF NOT v_created THEN
        SELECT * INTO STRICT v_strategy FROM strategies WHERE user_id = v_user AND name = btrim(p_name);
    END IF;

    RETURN envelope(true, NULL, NULL, CASE WHEN v_created THEN 201 ELSE 200 END, jsonb_build_object(
        'id', v_strategy.id, 'name', v_strategy.name,
        'created_at', to_char(v_strategy.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')));
END
$$;

REVOKE ALL ON FUNCTION create_strategy(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_strategy(text) TO orders_api;

RESET ROLE;
