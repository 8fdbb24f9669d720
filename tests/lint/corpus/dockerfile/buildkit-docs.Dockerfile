# syntax=docker/dockerfile:1
# Edge syntax from the Dockerfile reference (BuildKit frontend).
FROM busybox:1.36 AS base
RUN echo hello \
# comment
world
RUN echo hello \

world
RUN <<EOF
#!/usr/bin/env python
import subprocess
subprocess.run("curl -k https://x | sh", shell=True)
EOF
RUN <<EOF
#!/bin/sh
wget --no-check-certificate https://example.com/a
EOF
COPY <<EOF1 <<EOF2 /
hello from file one
EOF1
hello from file two
EOF2
RUN <<-"EOT" bash
	echo "$HOME stays literal"
	sudo true
	EOT
ENV MY_NAME="John Doe" MY_DOG=Rex\ The\ Dog \
    MY_CAT=fluffy
ENV LEGACY value with spaces
LABEL "com.example.vendor"="ACME Incorporated" version="1.0" description="This text \
illustrates that label-values can span multiple lines."
ARG user1=someuser
USER ${user1}
ONBUILD ADD . /app/src
ONBUILD RUN /usr/local/bin/python-build --dir /app/src
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5m --timeout=3s CMD wget -q -O /dev/null http://localhost/ || exit 1
SHELL ["powershell", "-command"]
RUN Write-Host hello | Out-Null
EXPOSE 80/udp 8080
WORKDIR /app
CMD echo "$MY_NAME"
