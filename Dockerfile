# walcastd as a container image: `docker build -t walcast .`, or through
# docker-compose.yml.  Two stages on Debian 12, the platform walcast is
# built and tested on: one builds and installs, the other carries only the
# installed files and the shared libraries they need.

FROM debian:12 AS build
# The build dependencies are .ci/packages (the list CI and the README
# install) without the packages only the tests use, so a dependency added
# there reaches the image without editing this file.
COPY .ci/packages /tmp/packages
RUN set -eux; \
    printf '%s\n' clang libclang-rt-14-dev libcmocka-dev kcat procps strace \
        postgresql-15 postgresql-15-wal2json postgresql-client-15 python3-yaml \
        systemd man-db \
        > /tmp/test-only; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        $(grep -vxF -f /tmp/test-only /tmp/packages); \
    rm -rf /var/lib/apt/lists/*
COPY . /src
# -Werror is for CI; an image build should not fail on a new warning.
# DESTDIR keeps the installed tree apart, for the runtime stage to copy.
RUN set -eux; \
    cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF -DWALCAST_WERROR=OFF; \
    cmake --build /build -j"$(nproc)"; \
    DESTDIR=/install cmake --install /build --prefix /usr --strip; \
    /install/usr/sbin/walcastd --version

FROM debian:12-slim
# Runtime libraries only: libpq (PostgreSQL), libyaml (configuration),
# librdkafka (Kafka), libmicrohttpd (metrics), libsystemd (sd_notify),
# libmimalloc (walcastd's malloc).
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates libpq5 libyaml-0-2 librdkafka1 libmicrohttpd12 libsystemd0 \
        libmimalloc2.0; \
    rm -rf /var/lib/apt/lists/*; \
    useradd --system --user-group --home-dir /var/lib/walcast --create-home \
        --shell /usr/sbin/nologin walcast
COPY --from=build /install/ /
# fails the build if a shared library is missing from the list above
RUN walcastd --version && walcast --version
USER walcast
WORKDIR /var/lib/walcast
# walcastd handles SIGTERM (docker stop) itself, even as PID 1: it drains
# its sinks for up to 5 s, within docker's default 10 s stop timeout.
CMD ["walcastd", "-c", "/etc/walcast/walcast.yaml"]
