ARG GO_VERSION=1.22
ARG BASE=gcr.io/distroless/static
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app ./cmd/app \
 && go install golang.org/x/tools/cmd/goimports@latest

FROM ${BASE}
COPY --from=build /out/app /app
HEALTHCHECK --interval=30s CMD ["/app", "health"]
USER 65532:65532
ENTRYPOINT ["/app"]
