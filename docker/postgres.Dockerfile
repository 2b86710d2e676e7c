# PostgreSQL for `docker compose up`: the official image plus wal2json and
# the settings walcast needs.  Build context: this directory.
#
# The official image runs upstream PostgreSQL from apt.postgresql.org,
# whose wal2json package matches it.  Upstream PostgreSQL does not
# restrict output plugins, so `output_plugin_libraries` (a setting of
# some distribution builds, see config/postgresql.conf) is left out:
# PostgreSQL refuses to start on a setting it does not know.
FROM postgres:15-bookworm

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-$PG_MAJOR-wal2json"; \
    rm -rf /var/lib/apt/lists/*; \
    test -f "/usr/lib/postgresql/$PG_MAJOR/lib/wal2json.so"

# initdb copies postgresql.conf.sample into every new cluster: an include
# there brings walcast's settings to the cluster the entrypoint creates.
COPY postgres-walcast.conf /etc/postgresql/walcast.conf
RUN set -eux; \
    test -f /usr/share/postgresql/postgresql.conf.sample; \
    echo "include '/etc/postgresql/walcast.conf'" \
        >> /usr/share/postgresql/postgresql.conf.sample

# the role walcastd connects as (scripts here run once, on a new cluster)
COPY postgres-init.sql /docker-entrypoint-initdb.d/10-walcast.sql
