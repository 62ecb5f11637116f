"""SQL that makes tables refuse UPDATE, DELETE and TRUNCATE (function from migration 0002)."""


def install_sql(tables) -> str:
    return "".join(
        f"""
CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_update_delete;
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate;
"""
        for table in tables
    )


def remove_sql(tables) -> str:
    return "".join(
        f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};\n"
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};\n"
        for table in tables
    )
