FROM node:20.11-alpine
ARG NPM_TOKEN
ARG VERSION=1.0.0
ENV AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY \
    LOG_LEVEL=info
ENV DATABASE_URL=postgres://app:sup3rsecret@db:5432/app
COPY .npmrc id_rsa ./
RUN echo "//registry.npmjs.org/:_authToken=${NPM_TOKEN}" > .npmrc && npm ci && rm .npmrc
RUN echo 'app:changeme1' | chpasswd
LABEL maintainer="ops@example.com"
HEALTHCHECK CMD wget -q -O /dev/null http://localhost:3000/health
USER node
