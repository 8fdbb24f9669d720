FROM alpine
RUN apk update && apk upgrade && apk add curl bash=5.2.21-r0
RUN apk add --no-cache git
ADD https://example.com/tool.tar.gz /opt/
ADD config.yml /etc/app/
HEALTHCHECK CMD ["true"]
USER nobody
