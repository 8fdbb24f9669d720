# syntax=docker/dockerfile:1.7
FROM debian:12.5-slim@sha256:0000000000000000000000000000000000000000000000000000000000000000
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates=20230311 curl=7.88.1-10+deb12u5 \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=secret,id=token curl -fsSL -H "Authorization: Bearer $(cat /run/secrets/token)" \
      -o /tmp/app.tgz https://releases.example.com/app-1.2.3.tgz \
 && echo "0123456789abcdef  /tmp/app.tgz" | sha256sum -c - \
 && tar -xzf /tmp/app.tgz -C /opt && rm /tmp/app.tgz
COPY --chown=10001:10001 --chmod=0755 app /opt/app/
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["/opt/app/bin/app", "health"]
USER 10001:10001
ENTRYPOINT ["/opt/app/bin/app"]
