# revoked and revokectl: built with the Swift toolchain, run on a slim Debian with libhiredis.
# docker compose up (docker-compose.yml) builds it; alone: docker build -t revoke/revoked .

# --- build ---------------------------------------------------------------------------------
FROM swift:6.3-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhiredis-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that a change to our sources does not fetch them again.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
COPY Benchmarks ./Benchmarks
RUN swift build -c release --static-swift-stdlib --product revoked \
    && swift build -c release --static-swift-stdlib --product revokectl \
    && mkdir /out \
    && cp "$(swift build -c release --show-bin-path)/revoked" "$(swift build -c release --show-bin-path)/revokectl" /out/

# --- run -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# libhiredis0.14: the Redis client library; curl: the health check on /readyz.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhiredis0.14 ca-certificates curl tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin revoke
COPY --from=build /out/revoked /out/revokectl /usr/local/bin/
USER revoke
ENV REVOKE_HOST=0.0.0.0 \
    REVOKE_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/readyz || exit 1
# SIGTERM drains requests in flight, then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/revoked"]
