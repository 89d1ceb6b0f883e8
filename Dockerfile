# minimesh. Build context: the repository root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /minimesh ./cmd/minimesh

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /minimesh /minimesh
# 15010: xDS (gRPC ADS).
EXPOSE 15010
ENTRYPOINT ["/minimesh"]
