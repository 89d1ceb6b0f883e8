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

// TestGRPCGoAcceptsBootstrap hands the file to gRPC-Go's own bootstrap
// parser, through the one public door to it: an xDS-enabled server, which
// also insists on the server listener template.
func TestGRPCGoAcceptsBootstrap(t *testing.T) {
	out, err := GRPC(grpcOptions)
	if err != nil {
		t.Fatal(err)
	}
	if err := parseWithGRPCGo(t, out); err != nil {
		t.Errorf("gRPC-Go refused the bootstrap: %v\n%s", err, out)
	}
}

// TestGRPCGoRefusesBrokenBootstrap shows that the check above can fail.
func TestGRPCGoRefusesBrokenBootstrap(t *testing.T) {
	out, err := GRPC(grpcOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"server_uri"`, `"server_listener_resource_name_template"`} {
		broken := strings.Replace(string(out), field, `"misspelled"`, 1)
		err := parseWithGRPCGo(t, []byte(broken))
		if err == nil {
			t.Errorf("gRPC-Go accepted a bootstrap without %s", field)
		}
		t.Logf("without %s: %v", field, err)
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
