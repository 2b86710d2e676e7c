#!/bin/sh
# The compose file's one-shot `workload`: a sample tenant schema and a few
# transactions in it, so that `docker compose up` shows changes arriving.
# Runs in the postgres image; PGHOST, PGUSER, PGPASSWORD and PGDATABASE
# come from docker-compose.yml.
set -eu

psql="psql -X -q -v ON_ERROR_STOP=1"
# seconds between rounds, so that the changes trickle in while you watch
pause=${WORKLOAD_PAUSE:-2}

# Changes committed before walcastd created its slot would never be
# decoded: wait for the slot.
i=0
until [ "$($psql -tAc "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'walcast'")" = 1 ]; do
        i=$((i + 1))
        if [ "$i" -gt 120 ]; then
                echo "workload: no replication slot \"walcast\" after 120 s: is walcastd running?" >&2
                exit 1
        fi
        sleep 1
done

$psql <<'SQL'
CREATE SCHEMA IF NOT EXISTS "town6-demo";
CREATE TABLE IF NOT EXISTS "town6-demo".tickets (
        id bigserial PRIMARY KEY,
        title text NOT NULL,
        state text NOT NULL DEFAULT 'open',
        updated_at timestamptz NOT NULL DEFAULT now()
);
SQL

for round in 1 2 3 4 5; do
        # one transaction per statement group: an insert of three rows, an
        # update, a delete of one row
        $psql <<SQL
BEGIN;
INSERT INTO "town6-demo".tickets (title)
SELECT 'ticket ' || $round || '.' || n FROM generate_series(1, 3) AS n;
COMMIT;
UPDATE "town6-demo".tickets SET state = 'closed', updated_at = now()
 WHERE id = (SELECT min(id) FROM "town6-demo".tickets WHERE state = 'open');
DELETE FROM "town6-demo".tickets
 WHERE id = (SELECT min(id) FROM "town6-demo".tickets WHERE state = 'closed');
SQL
        echo "workload: round $round written"
        sleep "$pause"
done
# a bulk delete: one transaction, one delete per row in the WAL
$psql -c 'DELETE FROM "town6-demo".tickets WHERE state = '"'open'"
echo "workload: done"
