package bootstrap

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/xds"
)

var grpcOptions = GRPCOptions{NodeID: "greeter-client.default", XDSAddress: "minimesh:15010"}

// TestGRPCFields reads the JSON back into a struct written here, apart from
// the one GRPC uses, and checks each field gRPC looks at.
func TestGRPCFields(t *testing.T) {
	out, err := GRPC(grpcOptions)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		XDSServers []struct {
			ServerURI    string `json:"server_uri"`
			ChannelCreds []struct {
				Type string `json:"type"`
			} `json:"channel_creds"`
			ServerFeatures []string `json:"server_features"`
		} `json:"xds_servers"`
		Node struct {
			ID       string            `json:"id"`
			Metadata map[string]string `json:"metadata"`
			Locality map[string]any    `json:"locality"`
		} `json:"node"`
		Template string `json:"server_listener_resource_name_template"`
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	if len(got.XDSServers) != 1 {
		t.Fatalf("xds_servers has %d entries, want 1", len(got.XDSServers))
	}
	s := got.XDSServers[0]
	if s.ServerURI != "minimesh:15010" {
		t.Errorf("server_uri = %q, want minimesh:15010", s.ServerURI)
	}
	if len(s.ChannelCreds) != 1 || s.ChannelCreds[0].Type != "insecure" {
		t.Errorf("channel_creds = %+v, want [{insecure}]", s.ChannelCreds)
	}
	if diff := cmp.Diff([]string{"xds_v3"}, s.ServerFeatures); diff != "" {
		t.Errorf("server_features (-want +got):\n%s", diff)
	}
	if got.Node.ID != "greeter-client.default" {
		t.Errorf("node.id = %q, want greeter-client.default", got.Node.ID)
	}
	if diff := cmp.Diff(map[string]string{"NAMESPACE": "default"}, got.Node.Metadata); diff != "" {
		t.Errorf("node.metadata (-want +got):\n%s", diff)
	}
	if got.Node.Locality == nil {
		t.Error("node.locality is missing")
	}
	if want := "grpc/server?xds.resource.listening_address=%s"; got.Template != want {
		t.Errorf("server_listener_resource_name_template = %q, want %q", got.Template, want)
	}
}

// TestGRPCTLSFields checks the two TLS shapes: the certificate provider
// alone (plaintext xDS, mTLS between workloads), and with it the "tls"
// channel credentials for xDS.
func TestGRPCTLSFields(t *testing.T) {
	type fileWatcher struct {
		CertificateFile   string `json:"certificate_file"`
		PrivateKeyFile    string `json:"private_key_file"`
		CACertificateFile string `json:"ca_certificate_file"`
		RefreshInterval   string `json:"refresh_interval"`
	}
	type creds struct {
		Type   string       `json:"type"`
		Config *fileWatcher `json:"config"`
	}
	type provider struct {
		PluginName string      `json:"plugin_name"`
		Config     fileWatcher `json:"config"`
	}
	files := fileWatcher{
		CertificateFile:   "/etc/minimesh/certs/cert-chain.pem",
		PrivateKeyFile:    "/etc/minimesh/certs/key.pem",
		CACertificateFile: "/etc/minimesh/certs/root-cert.pem",
		RefreshInterval:   "10s",
	}
	tests := []struct {
		name      string
		o         GRPCOptions
		wantCreds []creds
	}{
		{"certificates, plaintext xDS", GRPCOptions{NodeID: "a.b", XDSAddress: "minimesh:15010", CertDir: "/etc/minimesh/certs"},
			[]creds{{Type: "insecure"}}},
		{"certificates, xDS over TLS", GRPCOptions{NodeID: "a.b", XDSAddress: "minimesh:15010", CertDir: "/etc/minimesh/certs/", XDSTLS: true},
			[]creds{{Type: "tls", Config: &files}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := GRPC(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				XDSServers []struct {
					ServerURI      string   `json:"server_uri"`
					ChannelCreds   []creds  `json:"channel_creds"`
					ServerFeatures []string `json:"server_features"`
				} `json:"xds_servers"`
				Node                 json.RawMessage     `json:"node"`
				CertificateProviders map[string]provider `json:"certificate_providers"`
				Template             string              `json:"server_listener_resource_name_template"`
			}
			dec := json.NewDecoder(strings.NewReader(string(out)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("decoding %s: %v", out, err)
			}
			if diff := cmp.Diff(tc.wantCreds, got.XDSServers[0].ChannelCreds); diff != "" {
				t.Errorf("channel_creds (-want +got):\n%s", diff)
			}
			want := map[string]provider{"default": {PluginName: "file_watcher", Config: files}}
			if diff := cmp.Diff(want, got.CertificateProviders); diff != "" {
				t.Errorf("certificate_providers (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGRPCPlaintextHasNoProviders checks that without certificates the
// bootstrap defines no certificate provider.
func TestGRPCPlaintextHasNoProviders(t *testing.T) {
	out, err := GRPC(grpcOptions)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "certificate_providers") {
		t.Errorf("plaintext bootstrap defines certificate providers:\n%s", out)
	}
}

// grpcShapes are the three kinds of gRPC bootstrap, for certificates in dir.
func grpcShapes(dir string) map[string]GRPCOptions {
	return map[string]GRPCOptions{
		"plaintext":                   grpcOptions,
		"certificates, plaintext xDS": {NodeID: "greeter.default", XDSAddress: "minimesh:15010", CertDir: dir},
		"certificates, xDS over TLS":  {NodeID: "greeter.default", XDSAddress: "minimesh:15010", CertDir: dir, XDSTLS: true},
	}
}

// TestGRPCGoAcceptsBootstrap hands the file to gRPC-Go's own bootstrap
// parser, through the one public door to it: an xDS-enabled server, which
// also insists on the server listener template. The parser builds the
// channel credentials (it fails when none of the types is known) and parses
// every certificate provider's configuration.
func TestGRPCGoAcceptsBootstrap(t *testing.T) {
	dir := t.TempDir()
	writeWorkloadCerts(t, dir)
	for name, o := range grpcShapes(dir) {
		t.Run(name, func(t *testing.T) {
			out, err := GRPC(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := parseWithGRPCGo(t, out); err != nil {
				t.Errorf("gRPC-Go refused the bootstrap: %v\n%s", err, out)
			}
		})
	}
}

// TestGRPCGoRefusesBrokenBootstrap shows that the check above can fail, for
// each part of the bootstrap that it is meant to cover.
func TestGRPCGoRefusesBrokenBootstrap(t *testing.T) {
	dir := t.TempDir()
	writeWorkloadCerts(t, dir)
	shapes := grpcShapes(dir)
	tests := []struct {
		shape, from, to string
	}{
		{"plaintext", `"server_uri"`, `"misspelled"`},
		{"plaintext", `"server_listener_resource_name_template"`, `"misspelled"`},
		{"plaintext", `"insecure"`, `"unknown"`},
		// the first certificate_file is the channel credentials'
		{"certificates, xDS over TLS", `"certificate_file"`, `"misspelled"`},
		// with insecure credentials, the only one is the provider's
		{"certificates, plaintext xDS", `"certificate_file"`, `"misspelled"`},
		{"certificates, plaintext xDS", `"10s"`, `"ten seconds"`},
	}
	for _, tc := range tests {
		out, err := GRPC(shapes[tc.shape])
		if err != nil {
			t.Fatal(err)
		}
		broken := strings.Replace(string(out), tc.from, tc.to, 1)
		if broken == string(out) {
			t.Fatalf("%s: %s not found in\n%s", tc.shape, tc.from, out)
		}
		err = parseWithGRPCGo(t, []byte(broken))
		if err == nil {
			t.Errorf("%s: gRPC-Go accepted a bootstrap with %s instead of %s", tc.shape, tc.to, tc.from)
		}
		t.Logf("%s, %s instead of %s: %v", tc.shape, tc.to, tc.from, err)
	}
}

func TestGRPCErrors(t *testing.T) {
	tests := []struct {
		name    string
		o       GRPCOptions
		wantErr string
	}{
		{"no namespace", GRPCOptions{NodeID: "greeter", XDSAddress: "minimesh:15010"}, `node ID "greeter": want <workload>.<namespace>`},
		{"no port", GRPCOptions{NodeID: "a.b", XDSAddress: "minimesh"}, `xDS address "minimesh": want host:port`},
		{"scheme", GRPCOptions{NodeID: "a.b", XDSAddress: "dns:///minimesh:15010"}, `xDS address "dns:///minimesh:15010"`},
		{"TLS without certificates", GRPCOptions{NodeID: "a.b", XDSAddress: "minimesh:15010", XDSTLS: true}, "xDS over TLS needs the directory"},
		{"control character", GRPCOptions{NodeID: "a.b", XDSAddress: "minimesh:15010", CertDir: "/a\tb"}, "contains a control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := GRPC(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("GRPC() error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// parseWithGRPCGo creates, and stops at once, a gRPC-Go xDS server from the
// bootstrap. It does not connect to the xDS server. When gRPC-Go cannot parse
// the contents it quietly falls back to the bootstrap named by the
// environment (read once, at start-up), so the test needs it unset.
func parseWithGRPCGo(t *testing.T, contents []byte) error {
	t.Helper()
	for _, env := range []string{"GRPC_XDS_BOOTSTRAP", "GRPC_XDS_BOOTSTRAP_CONFIG"} {
		if os.Getenv(env) != "" {
			t.Skipf("%s is set: gRPC-Go would fall back to it", env)
		}
	}
	s, err := xds.NewGRPCServer(xds.BootstrapContentsForTesting(contents))
	if err != nil {
		return err
	}
	s.Stop()
	return nil
}
