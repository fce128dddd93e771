-- Roles are cluster-wide; create them only where missing so every database of a cluster can migrate.
-- orders_owner       owns every object; SECURITY DEFINER functions run as it. No login.
-- orders_api         what the HTTP API acts as for a trader (SET LOCAL ROLE per transaction). No login.
-- orders_maintenance what timers and admin routes act as: reads every tenant through explicit policies
--                    (not BYPASSRLS: only superusers may grant that, and managed servers have none). No login.
-- orders_archiver    owns the one retention path that may delete archived audit and error rows. No login.
-- Logins (the app's managed identity, a local dev user) are granted these roles by `OrderFunctions.Db grant-app`.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['orders_owner', 'orders_api', 'orders_maintenance', 'orders_archiver'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- another database of this cluster created it concurrently
            END;
        END IF;
    END LOOP;
END
$$;

-- The migrating login must be able to act as the owners to create objects owned by them.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['orders_owner', 'orders_archiver'] LOOP
        IF NOT pg_has_role(current_user, r, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO %I', r, current_user);
        END IF;
    END LOOP;
END
$$;

ALTER SCHEMA trading OWNER TO orders_owner;
REVOKE ALL ON SCHEMA trading FROM PUBLIC;
GRANT USAGE ON SCHEMA trading TO orders_api, orders_maintenance;

-- Functions are executable by PUBLIC by default; here every grant is explicit. (Default privileges given
-- IN SCHEMA can only add to the global ones, so the revoke must be global for the owning roles.)
ALTER DEFAULT PRIVILEGES FOR ROLE orders_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE orders_archiver REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
-- orders_archiver owns the retention function (R__07), so it creates it in this schema.
GRANT USAGE, CREATE ON SCHEMA trading TO orders_archiver;

-- Health reports the schema version from Evolve's changelog.
GRANT USAGE ON SCHEMA evolve TO orders_api, orders_maintenance;
GRANT SELECT ON evolve.changelog TO orders_api, orders_maintenance;
