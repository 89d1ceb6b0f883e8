package bootstrap

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

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
// SPIFFE ID, cannot pass.
//
// Envoy gets the files through file-based SDS (EnvoySDSFileName in dir,
// written by `minimesh certs issue`) and watches dir: running `certs issue`
// again renews the certificate without restarting Envoy. (Files named
// directly in a TLS context are read only once, at start.)
func xdsTransportSocket(xds hostPort, dir string) (*corev3.TransportSocket, error) {
	ctx := &tlsv3.UpstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			// gRPC servers refuse TLS connections that do not negotiate h2.
			AlpnProtocols: []string{"h2"},
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{
				Name: XDSClientSecret, SdsConfig: sdsFileSource(dir),
			}},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext: &tlsv3.CertificateValidationContext{
						MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{serverSAN(xds)},
					},
					ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{
						Name: XDSRootsSecret, SdsConfig: sdsFileSource(dir),
					},
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

// The secrets of the file-based SDS that secures Envoy's xDS connection.
const (
	XDSClientSecret = "xds-client-certificate"
	XDSRootsSecret  = "xds-trust-bundle"
	// EnvoySDSFileName is the file-based SDS resource file in the
	// certificate directory.
	EnvoySDSFileName = "envoy-sds.yaml"
)

// sdsFileSource is file-based SDS from dir, reloaded when dir changes
// (certs.WriteFiles replaces files by renaming, which Envoy sees).
func sdsFileSource(dir string) *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{
			Path:             filepath.Join(dir, EnvoySDSFileName),
			WatchedDirectory: &corev3.WatchedDirectory{Path: dir},
		}},
	}
}

// EnvoySDSFile is the file-based SDS resource file for dir, as Envoy sees
// dir: the xDS client certificate and the trust bundle, by file name.
func EnvoySDSFile(dir string) ([]byte, error) {
	f := certFilesIn(dir)
	secrets := []*tlsv3.Secret{
		{Name: XDSClientSecret, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: fileSource(f.Chain), PrivateKey: fileSource(f.Key),
		}}},
		{Name: XDSRootsSecret, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: fileSource(f.Roots),
		}}},
	}
	resp := &discoveryv3.DiscoveryResponse{}
	for _, s := range secrets {
		if err := s.ValidateAll(); err != nil {
			return nil, fmt.Errorf("SDS file: %w", err)
		}
		a, err := anypb.New(s)
		if err != nil {
			return nil, err
		}
		resp.Resources = append(resp.Resources, a)
	}
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
	if err != nil {
		return nil, err
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, err
	}
	return append([]byte("# File-based SDS for Envoy's xDS connection, written by minimesh certs issue.\n"), y...), nil
}
