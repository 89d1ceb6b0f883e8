#!/usr/bin/env bash
# Installs what the Kubernetes integration tests (watcher/kube, e2e, kubeca,
# kubeauth, inject, examples/kubernetes) need: etcd (Debian's etcd-server),
# kube-apiserver v1.37.2 built from the Go module proxy, and iptables for the
# init container's rules. The binary is cached; a second run takes a second.
#
#   bash hack/kube-testenv.sh        # prints the directory to export
#   export MINIMESH_KUBE_ASSETS=$(bash hack/kube-testenv.sh | tail -1)
#
# Tests find the binaries in $MINIMESH_KUBE_ASSETS, else in the default cache
# directory below, else on $PATH.
set -euo pipefail

KUBE_VERSION=v1.37.2
STAGING_VERSION=v0.37.2
ASSETS=${MINIMESH_KUBE_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/minimesh/kube-$KUBE_VERSION}
mkdir -p "$ASSETS"

log() { echo "kube-testenv: $*" >&2; }

# etcd: Debian's etcd-server (3.4) is enough for the API server's storage.
if [ ! -x "$ASSETS/etcd" ]; then
  if ! command -v etcd >/dev/null 2>&1; then
    log "installing etcd-server from Debian"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server >/dev/null
  fi
  ln -sf "$(command -v etcd)" "$ASSETS/etcd"
fi

# kube-apiserver: k8s.io/kubernetes is not meant to be required as a module,
# so a throwaway module pins every staging module to the matching v0 release.
if [ ! -x "$ASSETS/kube-apiserver" ]; then
  log "building kube-apiserver $KUBE_VERSION (cold: ~6 minutes on 2 cores)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  staging="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
    cloud-provider cluster-bootstrap code-generator component-base component-helpers
    controller-manager cri-api cri-client cri-streaming csi-translation-lib
    dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
    kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
    mount-utils pod-security-admission sample-apiserver streaming"
  {
    echo "module minimesh.local/kube-apiserver-build"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	k8s.io/$m => k8s.io/$m $STAGING_VERSION"; done
    echo ")"
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  (
    cd "$work"
    GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
    GOFLAGS=-mod=mod go get k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION
    minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
    GOFLAGS=-mod=mod go build -trimpath -o "$ASSETS/kube-apiserver.tmp" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
      k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv "$ASSETS/kube-apiserver.tmp" "$ASSETS/kube-apiserver"
fi

# iptables and iproute2: the init container's rules are tested for real in a
# network namespace of the test's own (inject/iptables).
if ! command -v iptables-restore >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
  log "installing iptables and iproute2 from Debian"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq iptables iproute2 >/dev/null
fi

"$ASSETS/kube-apiserver" --version >&2
echo "$ASSETS"
