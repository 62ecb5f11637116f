-- The application role may only read and append to the audit log's tables.
-- (The triggers of migration audit.0002 refuse UPDATE, DELETE and TRUNCATE for every role too.)
-- The log's partitions are reached through audit_event only: the owner creates them
-- (audit_partition_room, SECURITY DEFINER) and grants the application nothing on them.
DO $$
DECLARE
    audit_table text;
BEGIN
    FOREACH audit_table IN ARRAY ARRAY['audit_event', 'audit_event_key', 'audit_log_partition', 'audit_signing_key',
                                       'audit_log'] LOOP
        IF to_regclass(audit_table) IS NOT NULL THEN
            EXECUTE format('REVOKE ALL ON %I FROM driftledger_app', audit_table);
            EXECUTE format('GRANT SELECT, INSERT ON %I TO driftledger_app', audit_table);
        END IF;
    END LOOP;
END
$$;
