package bootstrap

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/minimesh/minimesh/certs"
)

// tlsTransportSocketName is Envoy's name for the TLS transport socket.
const tlsTransportSocketName = "envoy.transport_sockets.tls"

// certFiles are the files `minimesh certs issue --out DIR` writes, as the
// proxy sees them.
type certFiles struct {
	Chain string // the workload's certificate and intermediates
	Key   string // its private key
	Roots string // the mesh's trust bundle
}

// certFilesIn returns the paths of the certificate files in dir.
func certFilesIn(dir string) certFiles {
	return certFiles{
		Chain: filepath.Join(dir, certs.ChainFileName),
		Key:   filepath.Join(dir, certs.KeyFileName),
		Roots: filepath.Join(dir, certs.RootsFileName),
	}
}

// xdsTransportSocket makes Envoy's connection to minimesh mutual TLS: Envoy
// presents the workload certificate in dir, and accepts minimesh only with
// a certificate that chains to the roots in dir and names the host Envoy
// dials (a DNS SAN for a name, an IP SAN for an address) — the check gRPC
// clients make, and one that workload certificates, which carry only a
// SPIFFE ID, cannot pass. Envoy reads these files once, at start.
func xdsTransportSocket(xds hostPort, dir string) (*corev3.TransportSocket, error) {
	f := certFilesIn(dir)
	ctx := &tlsv3.UpstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			// gRPC servers refuse TLS connections that do not negotiate h2.
			AlpnProtocols: []string{"h2"},
			TlsCertificates: []*tlsv3.TlsCertificate{{
				CertificateChain: fileSource(f.Chain),
				PrivateKey:       fileSource(f.Key),
			}},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
				ValidationContext: &tlsv3.CertificateValidationContext{
					TrustedCa:                 fileSource(f.Roots),
					MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{serverSAN(xds)},
				},
			},
		},
	}
	if !xds.IsIP() {
		ctx.Sni = xds.Host
	}
	// ValidateAll does not look inside the Any that carries this.
	if err := ctx.ValidateAll(); err != nil {
		return nil, fmt.Errorf("xDS TLS context: %w", err)
	}
	a, err := anypb.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("xDS TLS context: %w", err)
	}
	return &corev3.TransportSocket{
		Name:       tlsTransportSocketName,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a},
	}, nil
}

// serverSAN is the SAN minimesh's certificate must carry for a proxy that
// dials host: the IP address or the DNS name (compared without case).
func serverSAN(xds hostPort) *tlsv3.SubjectAltNameMatcher {
	if ip, err := netip.ParseAddr(xds.Host); err == nil {
		return &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_IP_ADDRESS,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: ip.String()}},
		}
	}
	return &tlsv3.SubjectAltNameMatcher{
		SanType: tlsv3.SubjectAltNameMatcher_DNS,
		Matcher: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: strings.ToLower(xds.Host)},
			IgnoreCase:   true,
		},
	}
}

// fileSource is a data source read from a file.
func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}
