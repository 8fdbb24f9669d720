# syntax=docker/dockerfile:1
# From BuildKit's heredoc documentation, with security mistakes added.
FROM debian:12.5-slim AS base
RUN <<EOT bash
  set -ex
  apt-get update
  apt-get install -y --no-install-recommends vim=2:9.0.1378-2
EOT

FROM base
RUN <<EOF
#!/usr/bin/env bash
curl -fsSL https://get.example.com/install.sh | sudo bash
EOF
COPY <<-EOT /app/script.sh
	echo "hello ${FOO}"
EOT
RUN python3 <<EOF
with open("/hello", "w") as f:
    print("Hello", file=f)
EOF
HEALTHCHECK CMD ["/app/script.sh"]
USER 10001
