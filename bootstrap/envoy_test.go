package bootstrap

import (
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
	"sigs.k8s.io/yaml"
)

// validOptions covers each way the options change the output.
var validOptions = map[string]EnvoyOptions{
	"delta, IPv4":    {NodeID: "my-app-v1.default", XDSAddress: "10.0.0.1:15010", Delta: true},
	"sotw, DNS name": {NodeID: "web.shop", XDSAddress: "minimesh:15010"},
	"IPv6":           {NodeID: "a.b", XDSAddress: "[fd00::1]:15010", Delta: true, AdminAddress: "[::1]:9901"},
	"dotted name":    {NodeID: "api.v2.prod", XDSAddress: "minimesh.mesh-system.svc.cluster.local:15012"},
	"TLS, DNS name":  {NodeID: "my-app-v1.default", XDSAddress: "minimesh:15010", Delta: true, XDSTLS: true, CertDir: "/etc/minimesh/certs"},
	"TLS, IPv6":      {NodeID: "a.b", XDSAddress: "[fd00::1]:15010", XDSTLS: true, CertDir: "certs"},
}

func TestEnvoyValidates(t *testing.T) {
	for name, o := range validOptions {
		t.Run(name, func(t *testing.T) {
			b, err := Envoy(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.ValidateAll(); err != nil {
				t.Errorf("ValidateAll: %v", err)
			}
		})
	}
}

// TestEnvoyYAMLRoundTrip reads the YAML back the way Envoy does (YAML to
// JSON to proto, refusing unknown fields) and checks nothing was lost.
func TestEnvoyYAMLRoundTrip(t *testing.T) {
	for name, o := range validOptions {
		t.Run(name, func(t *testing.T) {
			want, err := Envoy(o)
			if err != nil {
				t.Fatal(err)
			}
			y, err := EnvoyYAML(o)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeYAML(t, y)
			if err := got.ValidateAll(); err != nil {
				t.Errorf("ValidateAll after round trip: %v", err)
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("round trip changed the bootstrap (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEnvoyYAMLIsStable guards against protojson's deliberately unstable
// spacing leaking into the files.
func TestEnvoyYAMLIsStable(t *testing.T) {
	o := validOptions["delta, IPv4"]
	first, err := EnvoyYAML(o)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := EnvoyYAML(o)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(first) {
			t.Fatalf("EnvoyYAML output changed between calls:\n%s\n---\n%s", first, again)
		}
	}
}

func TestEnvoySettings(t *testing.T) {
	tests := []struct {
		name        string
		o           EnvoyOptions
		wantAPI     corev3.ApiConfigSource_ApiType
		wantType    clusterv3.Cluster_DiscoveryType
		wantAdmin   string
		wantCluster string
		wantNS      string
	}{
		{"delta over IP", validOptions["delta, IPv4"], corev3.ApiConfigSource_DELTA_GRPC, clusterv3.Cluster_STATIC, "127.0.0.1", "my-app-v1", "default"},
		{"sotw over DNS", validOptions["sotw, DNS name"], corev3.ApiConfigSource_GRPC, clusterv3.Cluster_STRICT_DNS, "127.0.0.1", "web", "shop"},
		{"IPv6", validOptions["IPv6"], corev3.ApiConfigSource_DELTA_GRPC, clusterv3.Cluster_STATIC, "::1", "a", "b"},
		{"dots in the workload name", validOptions["dotted name"], corev3.ApiConfigSource_GRPC, clusterv3.Cluster_STRICT_DNS, "127.0.0.1", "api.v2", "prod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Envoy(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.GetDynamicResources().GetAdsConfig().GetApiType(); got != tc.wantAPI {
				t.Errorf("ads_config.api_type = %v, want %v", got, tc.wantAPI)
			}
			if got := b.GetStaticResources().GetClusters()[0].GetType(); got != tc.wantType {
				t.Errorf("xds cluster type = %v, want %v", got, tc.wantType)
			}
			if got := b.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); got != tc.wantAdmin {
				t.Errorf("admin address = %q, want %q", got, tc.wantAdmin)
			}
			if got := b.GetNode().GetCluster(); got != tc.wantCluster {
				t.Errorf("node.cluster = %q, want %q", got, tc.wantCluster)
			}
			if got := b.GetNode().GetMetadata().GetFields()["NAMESPACE"].GetStringValue(); got != tc.wantNS {
				t.Errorf("node.metadata.NAMESPACE = %q, want %q", got, tc.wantNS)
			}
		})
	}
}

func TestEnvoyErrors(t *testing.T) {
	tests := []struct {
		name    string
		o       EnvoyOptions
		wantErr string
	}{
		{"empty node ID", EnvoyOptions{XDSAddress: "10.0.0.1:15010"}, `node ID "": want <workload>.<namespace>`},
		{"no namespace", EnvoyOptions{NodeID: "my-app", XDSAddress: "10.0.0.1:15010"}, `node ID "my-app": want <workload>.<namespace>`},
		{"empty namespace", EnvoyOptions{NodeID: "my-app.", XDSAddress: "10.0.0.1:15010"}, `namespace "" is not a valid name`},
		{"empty workload", EnvoyOptions{NodeID: ".default", XDSAddress: "10.0.0.1:15010"}, `workload "" is not a valid name`},
		{"upper case", EnvoyOptions{NodeID: "My-App.default", XDSAddress: "10.0.0.1:15010"}, `workload "My-App" is not a valid name`},
		{"Istio-style ID", EnvoyOptions{NodeID: "sidecar~10.0.0.1~a.b~b.svc.cluster.local", XDSAddress: "10.0.0.1:15010"}, `workload "sidecar~10.0.0.1~a.b~b.svc.cluster" is not a valid name`},
		{"no port", EnvoyOptions{NodeID: "a.b", XDSAddress: "10.0.0.1"}, `xDS address "10.0.0.1": want host:port`},
		{"port zero", EnvoyOptions{NodeID: "a.b", XDSAddress: "minimesh:0"}, `xDS address "minimesh:0": port "0" is not a number from 1 to 65535`},
		{"port too large", EnvoyOptions{NodeID: "a.b", XDSAddress: "minimesh:70000"}, `port "70000" is not a number`},
		{"named port", EnvoyOptions{NodeID: "a.b", XDSAddress: "minimesh:grpc"}, `port "grpc" is not a number`},
		{"empty host", EnvoyOptions{NodeID: "a.b", XDSAddress: ":15010"}, `host "" is neither an IP address nor a DNS name`},
		{"bad IP", EnvoyOptions{NodeID: "a.b", XDSAddress: "10.0.0.300:15010"}, `host "10.0.0.300" is neither`},
		{"URL", EnvoyOptions{NodeID: "a.b", XDSAddress: "http://minimesh:15010"}, `xDS address "http://minimesh:15010": want host:port`},
		{"admin by name", EnvoyOptions{NodeID: "a.b", XDSAddress: "minimesh:15010", AdminAddress: "localhost:15000"}, `admin address "localhost:15000": host "localhost" must be an IP address`},
		{"TLS without certificates", EnvoyOptions{NodeID: "a.b", XDSAddress: "minimesh:15010", XDSTLS: true}, "xDS over TLS needs the directory of the workload's certificate files"},
		{"certificates without TLS", EnvoyOptions{NodeID: "a.b", XDSAddress: "minimesh:15010", CertDir: "/certs"}, "a certificate directory is used only for xDS over TLS"},
		{"newline in the certificate directory", EnvoyOptions{NodeID: "a.b", XDSAddress: "minimesh:15010", XDSTLS: true, CertDir: "/certs\nadmin: {}"}, "contains a control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Envoy(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Envoy() error = %v, want it to contain %q", err, tc.wantErr)
			}
			if _, err := EnvoyYAML(tc.o); err == nil {
				t.Error("EnvoyYAML() accepted what Envoy() refused")
			}
		})
	}
}

// TestEnvoyXDSTLS checks the TLS settings of the connection to minimesh:
// the workload's certificate files, the roots, and the name minimesh's
// certificate must carry.
func TestEnvoyXDSTLS(t *testing.T) {
	tests := []struct {
		name    string
		o       EnvoyOptions
		wantSNI string
		wantSAN *tlsv3.SubjectAltNameMatcher
	}{
		{"DNS name", validOptions["TLS, DNS name"], "minimesh", &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_DNS,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "minimesh"}, IgnoreCase: true},
		}},
		{"upper-case name", EnvoyOptions{NodeID: "a.b", XDSAddress: "MiniMesh:15010", XDSTLS: true, CertDir: "/c"}, "MiniMesh", &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_DNS,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "minimesh"}, IgnoreCase: true},
		}},
		{"IPv4", EnvoyOptions{NodeID: "a.b", XDSAddress: "10.0.0.1:15010", XDSTLS: true, CertDir: "/c"}, "", &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_IP_ADDRESS,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "10.0.0.1"}},
		}},
		{"IPv6", validOptions["TLS, IPv6"], "", &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_IP_ADDRESS,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "fd00::1"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Envoy(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			ts := b.GetStaticResources().GetClusters()[0].GetTransportSocket()
			if ts.GetName() != "envoy.transport_sockets.tls" {
				t.Fatalf("xds-grpc transport_socket = %v, want envoy.transport_sockets.tls", ts)
			}
			ctx := &tlsv3.UpstreamTlsContext{}
			if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
				t.Fatal(err)
			}
			if err := ctx.ValidateAll(); err != nil {
				t.Errorf("UpstreamTlsContext.ValidateAll: %v", err)
			}
			dir := tc.o.CertDir
			// File-based SDS from the certificate directory, watched.
			fromFiles := &corev3.ConfigSource{
				ResourceApiVersion: corev3.ApiVersion_V3,
				ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{
					Path:             filepath.Join(dir, "envoy-sds.yaml"),
					WatchedDirectory: &corev3.WatchedDirectory{Path: dir},
				}},
			}
			want := &tlsv3.UpstreamTlsContext{
				Sni: tc.wantSNI,
				CommonTlsContext: &tlsv3.CommonTlsContext{
					AlpnProtocols: []string{"h2"},
					TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{
						Name: "xds-client-certificate", SdsConfig: fromFiles,
					}},
					ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
						CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
							DefaultValidationContext: &tlsv3.CertificateValidationContext{
								MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{tc.wantSAN},
							},
							ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "xds-trust-bundle", SdsConfig: fromFiles},
						},
					},
				},
			}
			if diff := cmp.Diff(want, ctx, protocmp.Transform()); diff != "" {
				t.Errorf("UpstreamTlsContext (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEnvoyPlaintextByDefault checks that without XDSTLS the connection to
// minimesh has no transport socket, and that the file says so.
func TestEnvoyPlaintextByDefault(t *testing.T) {
	o := validOptions["delta, IPv4"]
	b, err := Envoy(o)
	if err != nil {
		t.Fatal(err)
	}
	if ts := b.GetStaticResources().GetClusters()[0].GetTransportSocket(); ts != nil {
		t.Errorf("plaintext xds-grpc cluster has transport_socket %v", ts)
	}
	y, err := EnvoyYAML(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--insecure-xds\n", "# WARNING: xDS in plaintext"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("plaintext bootstrap does not contain %q:\n%s", want, y)
		}
	}
}

// decodeYAML parses an Envoy bootstrap file as Envoy does, failing on fields
// the Bootstrap proto does not have.
func decodeYAML(t *testing.T, y []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("YAML to JSON: %v", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, b); err != nil {
		t.Fatalf("decoding the bootstrap: %v", err)
	}
	return b
}

// TestEnvoySDSFile: the file-based SDS resources that the xDS connection's
// TLS context names decode as Envoy would read them: a DiscoveryResponse of
// valid Secrets, named as the bootstrap asks, pointing at the files that
// `minimesh certs issue` writes.
func TestEnvoySDSFile(t *testing.T) {
	data, err := EnvoySDSFile("/etc/minimesh/certs")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	resp := &discoveryv3.DiscoveryResponse{}
	if err := protojson.Unmarshal(j, resp); err != nil {
		t.Fatal(err)
	}
	got := map[string]*tlsv3.Secret{}
	for _, a := range resp.GetResources() {
		s := &tlsv3.Secret{}
		if err := a.UnmarshalTo(s); err != nil {
			t.Fatal(err)
		}
		if err := s.ValidateAll(); err != nil {
			t.Fatal(err)
		}
		got[s.GetName()] = s
	}
	cert := got["xds-client-certificate"].GetTlsCertificate()
	if cert.GetCertificateChain().GetFilename() != "/etc/minimesh/certs/cert-chain.pem" ||
		cert.GetPrivateKey().GetFilename() != "/etc/minimesh/certs/key.pem" {
		t.Errorf("client certificate secret: %v", cert)
	}
	if ca := got["xds-trust-bundle"].GetValidationContext().GetTrustedCa().GetFilename(); ca != "/etc/minimesh/certs/root-cert.pem" {
		t.Errorf("trust bundle secret: %q", ca)
	}
}
