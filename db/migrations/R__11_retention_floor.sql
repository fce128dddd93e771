-- The retention floor (trading.retention_floors, owner-only) enforced where every delete passes: a trigger on the
-- audit tables refuses to delete a row younger than its table's floor, for every role and whatever archive record
-- the transaction wrote. delete_archived_audit_rows() refuses such a cutoff up front, and the retention job asks
-- retention_floor_cutoff() for the youngest cutoff the database allows.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- The floor of one table. SECURITY DEFINER so that the roles that may not read the table can still learn the floor;
-- nobody but the owner can change it. A table without a floor row has an infinite one: nothing of it is deleted.
CREATE OR REPLACE FUNCTION retention_floor(p_table text)
    RETURNS interval
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
    SELECT coalesce((SELECT f.min_age FROM retention_floors f WHERE f.table_name = p_table), interval '1000 years')
$$;

-- The youngest cutoff retention may use for the table now: rows created before it are old enough to delete.
CREATE OR REPLACE FUNCTION retention_floor_cutoff(p_table text)
    RETURNS timestamptz
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    SELECT now() - retention_floor(p_table)
$$;

CREATE OR REPLACE FUNCTION enforce_retention_floor() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF OLD.created_at >= now() - trading.retention_floor(TG_TABLE_NAME) THEN
        RAISE EXCEPTION 'DELETE on %.% refused: row % is younger than the retention floor of %', TG_TABLE_SCHEMA, TG_TABLE_NAME,
            OLD.id, trading.retention_floor(TG_TABLE_NAME)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$;

CREATE OR REPLACE TRIGGER balance_audit_log_retention_floor
    BEFORE DELETE ON balance_audit_log
    FOR EACH ROW EXECUTE FUNCTION enforce_retention_floor();
CREATE OR REPLACE TRIGGER error_log_retention_floor
    BEFORE DELETE ON error_log
    FOR EACH ROW EXECUTE FUNCTION enforce_retention_floor();

REVOKE ALL ON FUNCTION retention_floor(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION retention_floor_cutoff(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retention_floor(text) TO orders_maintenance, orders_archiver;
GRANT EXECUTE ON FUNCTION retention_floor_cutoff(text) TO orders_maintenance, orders_archiver;

RESET ROLE;
