# Multi-stage build: a full Rust toolchain builds, a slim Debian runs as non-root.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/download-sessions

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/download-sessions --create-home dls
COPY --from=build /src/target/release/download-sessions /usr/local/bin/download-sessions
USER dls
ENV DLS__HTTP__LISTEN=0.0.0.0:8080 \
    DLS__DATA_DIR=/var/lib/download-sessions \
    DLS__LOG__FORMAT=json
EXPOSE 8080
ENTRYPOINT ["download-sessions"]
CMD ["serve"]
