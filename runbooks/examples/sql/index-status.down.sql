-- Also removes the invalid index a failed concurrent build leaves behind.
DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;
