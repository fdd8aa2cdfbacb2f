-- Built CONCURRENTLY so writes to orders go on while the index builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);
