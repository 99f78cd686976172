# syntax=docker/dockerfile:1
# Multi-stage build: a full Rust toolchain builds the release binary; a slim
# Debian runtime (ca-certificates for S3 over TLS, curl for health checks) runs
# it as an unprivileged user.

FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the build needs (.dockerignore keeps target/, data and VCS out).
COPY Cargo.toml Cargo.lock ./
# SQL is checked at compile time against the committed offline data (.sqlx),
# which .cargo/config.toml makes every build use: no database needed here.
COPY .cargo ./.cargo
COPY .sqlx ./.sqlx
COPY src ./src
COPY migrations ./migrations
# The registry and target dir are cache mounts, so a rebuild after a source
# change recompiles the crate only; the binary is copied out of the cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin download-sessions \
 && install -Dm755 target/release/download-sessions /out/download-sessions \
 && strip /out/download-sessions

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/download-sessions \
        --create-home --shell /usr/sbin/nologin dls
COPY --from=build /out/download-sessions /usr/local/bin/download-sessions
USER 10001:10001
WORKDIR /var/lib/download-sessions
ENV DLS__HTTP__LISTEN=0.0.0.0:8080 \
    DLS__DATA_DIR=/var/lib/download-sessions \
    DLS__LOG__FORMAT=json
EXPOSE 8080
# The service drains downloads on SIGTERM for http.shutdown_grace_seconds.
STOPSIGNAL SIGTERM
# Liveness only; orchestrators should route on /readyz (database and stores).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["download-sessions"]
CMD ["serve"]
