# minimesh. Build context: the repository root.
#
# One image serves both roles: `minimesh serve` (the control plane, run as
# a non-root user) and `minimesh init-iptables` (the init container that
# sidecar injection adds, run as root with NET_ADMIN). The second needs
# iptables-restore and ip6tables-restore, hence a small Debian base rather
# than a static distroless one.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -tags kubernetes: serve --kubernetes and inject (README, "Builds").
RUN CGO_ENABLED=0 go build -trimpath -tags kubernetes -o /minimesh ./cmd/minimesh

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /home/minimesh && chown 65532:65532 /home/minimesh
# serve keeps its CA under $HOME/.config/minimesh unless --ca-dir says otherwise.
ENV HOME=/home/minimesh
COPY --from=build /minimesh /usr/local/bin/minimesh
# 15010: xDS (gRPC ADS); 15014: token exchange; 15017: injection webhook;
# 15020: metrics; 15021: health.
EXPOSE 15010 15014 15017 15020 15021
# The control plane runs unprivileged; the injected init container sets
# runAsUser: 0 itself.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/minimesh"]
