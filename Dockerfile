# dockward's image: scripts/build-image.sh builds it (and makes the base image when the daemon
# lacks it). Builder: dockward's wheel and its dependencies into a venv; runtime: Debian's python3
# and that venv, nothing else (no compiler, no pip, no caches, no tests).
FROM debian:bookworm-slim AS builder
ARG PIP_NO_INDEX=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/wheels/ /wheels/
COPY pyproject.toml README.md /src/
COPY src/ /src/src/
RUN PIP_NO_INDEX=$PIP_NO_INDEX python3 -m pip wheel -q \
      --find-links /wheels --wheel-dir /wheels /src \
 && python3 -m venv /opt/dockward \
 && PIP_NO_INDEX=$PIP_NO_INDEX /opt/dockward/bin/pip install -q --find-links /wheels dockward \
 && /opt/dockward/bin/pip uninstall -y -q pip setuptools wheel \
 && find /opt/dockward -name '__pycache__' -prune -exec rm -rf {} + \
 && rm -f /opt/dockward/bin/activate* /opt/dockward/bin/Activate.ps1

FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="dockward" \
      org.opencontainers.image.description="Make a Docker host secure and keep it so: audit, lint, scan, harden, proxy, monitor, update, report." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="debian:bookworm-slim" \
      org.opencontainers.image.source="https://github.com/dockward/dockward"
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 dockward \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/dockward --no-create-home \
      --shell /usr/sbin/nologin dockward \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/dockward /run/dockward \
 && install -d -o 10001 -g 10001 -m 0770 /var/lib/dockward/update /var/lib/dockward/reports \
      /var/lib/dockward/db /var/lib/dockward/cache /var/lib/dockward/alerts /var/lib/dockward/spool \
      /var/lib/dockward/data \
 && find / -xdev -perm /6000 -type f -exec chmod a-s {} +
COPY --from=builder /opt/dockward /opt/dockward
ENV PATH=/opt/dockward/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOME=/var/lib/dockward XDG_CACHE_HOME=/var/lib/dockward/cache \
    DOCKWARD_METRICS_LISTEN=0.0.0.0:9464
USER 10001:10001
WORKDIR /var/lib/dockward
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["dockward", "health"]
ENTRYPOINT ["dockward"]
CMD ["--help"]
