package inject

import (
	"cmp"
	"fmt"

	"github.com/minimesh/minimesh/bootstrap"
)

// Names and values that injected pods carry. Tools, the watcher and people
// read them: they are stable.
const (
	// TLSModeLabel marks a pod whose sidecar accepts mutual TLS, under the
	// name Istio's injector uses, which minimesh's translator reads.
	TLSModeLabel = "security.istio.io/tlsMode"
	// TLSModeIstio is TLSModeLabel's value on injected pods.
	TLSModeIstio = "istio"
	// StatusAnnotation records what was injected; its presence makes
	// injection a no-op.
	StatusAnnotation = "sidecar.minimesh.io/status"
	// InjectAnnotation set to "false" opts a pod out of injection.
	InjectAnnotation = "sidecar.minimesh.io/inject"

	// InitContainerName installs the iptables redirect.
	InitContainerName = "minimesh-init"
	// ProxyContainerName is Envoy.
	ProxyContainerName = "minimesh-proxy"
	// TokenVolumeName holds the projected service-account token.
	TokenVolumeName = "minimesh-token"
	// RootCertVolumeName holds the mesh's root certificate.
	RootCertVolumeName = "minimesh-ca-root-cert"
	// RootCertConfigMap is the ConfigMap, in each injected namespace, that
	// holds the mesh's root certificate under RootCertKey. minimesh
	// writes it.
	RootCertConfigMap = "minimesh-ca-root-cert"
	RootCertKey       = "root-cert.pem"
	// TokenAudience is the audience of the token Envoy presents: minimesh
	// accepts no token meant for anything else.
	TokenAudience = "minimesh"

	// ProxyUID is the user Envoy runs as; the redirect exempts it.
	ProxyUID = 1337
	// InboundCapturePort and OutboundCapturePort are Envoy's transparent
	// listeners, which minimesh serves to proxies in REDIRECT mode.
	InboundCapturePort  = 15006
	OutboundCapturePort = 15001
	// MetricsPort is excluded from capture with bootstrap.HealthPort, so
	// that kubelet and Prometheus reach the sidecar itself.
	MetricsPort = 15090

	// DefaultProxyImage is Envoy's image.
	DefaultProxyImage = "envoyproxy/envoy:v1.37.2"
	// DefaultInitImage is minimesh's image, which must contain
	// iptables-restore and iptables-save.
	DefaultInitImage = "ghcr.io/minimesh/minimesh:latest"
)

// Where the proxy container mounts its volumes; the bootstrap's default
// paths are inside them.
const (
	tokenDir    = "/var/run/secrets/tokens"
	tokenFile   = "minimesh-token"
	rootCertDir = "/etc/minimesh/ca"
)

// Config is what injection needs to know beyond the pod. The zero value
// gives the defaults.
type Config struct {
	// ProxyImage is Envoy's image; DefaultProxyImage when empty.
	ProxyImage string
	// InitImage is the image of the init container, which runs `minimesh
	// init-iptables`; DefaultInitImage when empty.
	InitImage string
	// XDSAddress is minimesh's xDS Service, "host:port";
	// bootstrap.DefaultKubernetesXDSAddress when empty.
	XDSAddress string
	// TokenExchangeURL is minimesh's token exchange endpoint;
	// bootstrap.DefaultTokenExchangeURL when empty.
	TokenExchangeURL string
}

// withDefaults fills in the empty images; the bootstrap fills in its own
// empty addresses (bootstrap.KubernetesOptions).
func (c Config) withDefaults() Config {
	c.ProxyImage = cmp.Or(c.ProxyImage, DefaultProxyImage)
	c.InitImage = cmp.Or(c.InitImage, DefaultInitImage)
	return c
}

// bootstrapOptions are the options of the sidecar's bootstrap: the
// configured addresses, and the files where this package mounts the token
// and the root certificate.
func (c Config) bootstrapOptions() bootstrap.KubernetesOptions {
	return bootstrap.KubernetesOptions{
		XDSAddress:       c.XDSAddress,
		TokenExchangeURL: c.TokenExchangeURL,
		TokenPath:        tokenDir + "/" + tokenFile,
		RootCertPath:     rootCertDir + "/" + RootCertKey,
	}
}

// sidecarBootstrap renders the bootstrap once for a configuration.
func (c Config) sidecarBootstrap() (string, error) {
	y, err := bootstrap.KubernetesEnvoyYAML(c.bootstrapOptions())
	if err != nil {
		return "", fmt.Errorf("sidecar bootstrap: %w", err)
	}
	return string(y), nil
}

// Check reports a configuration that could inject no pod (an xDS address
// that is an IP, a token exchange URL that is not https). NewWebhook does
// not fail on one, it lets pods through without a sidecar and with a
// warning, so call Check when starting the server.
func (c Config) Check() error {
	_, err := c.withDefaults().sidecarBootstrap()
	return err
}
