# Propylon container image.
#
#   docker build -t propylon .
#   docker run --rm -p 8080:8080 -p 9090:9090 \
#       -v "$PWD/config:/etc/propylon:ro" -v propylon-data:/var/lib/propylon \
#       -e PROPYLON_ADMIN_TOKEN=... propylon
#
# The config is read from /etc/propylon/propylon.yaml (specs beside it, paths relative to it).
# Inside a container, set `server.listen: 0.0.0.0:8080` and `server.admin_listen: 0.0.0.0:9090`
# (publish 9090 only to the admins' network), and `store.path: /var/lib/propylon` so that
# accepted jobs survive a restart on the data volume.
# Other commands: `docker run ... propylon check --config /etc/propylon/propylon.yaml`.

# ---- build -------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p propylon \
    && cp target/release/propylon /usr/local/bin/propylon

# ---- run ---------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system propylon \
    && useradd --system --gid propylon --home-dir /var/lib/propylon --shell /usr/sbin/nologin propylon \
    && mkdir -p /etc/propylon /var/lib/propylon \
    && chown propylon:propylon /var/lib/propylon
COPY --from=build /usr/local/bin/propylon /usr/local/bin/propylon
USER propylon
WORKDIR /var/lib/propylon
VOLUME ["/etc/propylon", "/var/lib/propylon"]
EXPOSE 8080 9090
ENTRYPOINT ["propylon"]
CMD ["run", "--config", "/etc/propylon/propylon.yaml"]
