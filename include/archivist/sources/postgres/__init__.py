"""PostgreSQL: pg_dump out, psql back in, with the dump checked before psql sees it."""
