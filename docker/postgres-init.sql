-- Run once by the official image's entrypoint, in database $POSTGRES_DB
-- (app), on a new cluster: the role walcastd connects as.  A logical
-- replication connection needs LOGIN and REPLICATION, nothing more; its
-- password matches PGPASSWORD of the walcastd service in docker-compose.yml.
CREATE ROLE walcast LOGIN REPLICATION PASSWORD 'walcast';
