FROM debian:bookworm
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN wget -qO- https://example.com/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg
RUN ["/bin/sh", "-c", "curl -fsSL https://example.com/i.sh | sh"]
RUN ["apt-get", "install", "-y", "curl"]
RUN if [ -f /x ]; then sudo rm /x; fi && (cd /tmp && make) | tee /log
RUN bash -c "$(wget -qO- https://example.com/setup)"
RUN for p in a b; do echo $p; done; service ssh start
ONBUILD RUN curl --insecure https://example.com | bash
VOLUME ["/data", "/proc/sys"]
HEALTHCHECK CMD true
HEALTHCHECK CMD false
USER root:root
