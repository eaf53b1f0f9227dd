-- Run once by the postgres image's entrypoint, on an empty data volume only (to re-run it:
-- `docker compose down -v`). Creates the three databases of CONTRACT §7, then the catalog
-- schema, from the very file the seed tool embeds (dev/sql/catalog.sql, mounted by
-- docker-compose.yml at /catalog/catalog.sql). The `exports` and `db_analytics` tables are
-- created by the services themselves (embedded migrations) when they start.
CREATE DATABASE products_manager;
CREATE DATABASE exports;
CREATE DATABASE db_analytics;

\connect products_manager
\i /catalog/catalog.sql
