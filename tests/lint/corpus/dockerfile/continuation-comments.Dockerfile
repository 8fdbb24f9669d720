FROM ubuntu:22.04
# Comments inside a continuation are dropped by BuildKit, and so are blank lines.
RUN apt-get update \
    # install the tools
    && apt-get install -y \
        curl \
        # the TLS bundle
        ca-certificates \

    && curl -k -o /tmp/x https://example.com/x \
    && chmod 0777 /tmp/x
EXPOSE 22 8080
CMD ["/tmp/x"]
