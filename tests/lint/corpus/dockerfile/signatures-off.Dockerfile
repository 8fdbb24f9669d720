FROM alpine:3.19 AS apk
RUN apk add --no-cache --allow-untrusted /tmp/pkg.apk

FROM rockylinux:9
RUN dnf install -y --nogpgcheck httpd-2.4.57 \
 && rpm -ivh --nosignature --nodigest /tmp/x.rpm \
 && echo "deb [trusted=yes] http://repo.example/ ./" > /etc/apt/sources.list.d/x.list
RUN apt-get install -y --allow-unauthenticated --no-install-recommends foo=1.0 && rm -rf /var/lib/apt/lists/*
HEALTHCHECK CMD curl -f http://localhost/
USER 48
