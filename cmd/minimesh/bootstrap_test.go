package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

func TestRunBootstrapEnvoy(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantAPI   corev3.ApiConfigSource_ApiType
		wantXDS   string
		wantAdmin uint32
	}{
		{"defaults", []string{"--node", "my-app-v1.default"}, corev3.ApiConfigSource_DELTA_GRPC, "127.0.0.1", 15000},
		{"sotw", []string{"--node", "my-app-v1.default", "--sotw"}, corev3.ApiConfigSource_GRPC, "127.0.0.1", 15000},
		{"every flag", []string{"--node=a.b", "--xds=minimesh:15010", "--admin=0.0.0.0:9901"}, corev3.ApiConfigSource_DELTA_GRPC, "minimesh", 9901},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := runBootstrap(tc.args, &out); err != nil {
				t.Fatal(err)
			}
			b := decodeEnvoyBootstrap(t, out.Bytes())
			if got := b.GetDynamicResources().GetAdsConfig().GetApiType(); got != tc.wantAPI {
				t.Errorf("api_type = %v, want %v", got, tc.wantAPI)
			}
			xds := b.GetStaticResources().GetClusters()[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0]
			if got := xds.GetEndpoint().GetAddress().GetSocketAddress().GetAddress(); got != tc.wantXDS {
				t.Errorf("xDS host = %q, want %q", got, tc.wantXDS)
			}
			if got := b.GetAdmin().GetAddress().GetSocketAddress().GetPortValue(); got != tc.wantAdmin {
				t.Errorf("admin port = %d, want %d", got, tc.wantAdmin)
			}
		})
	}
}

func TestRunBootstrapGRPC(t *testing.T) {
	var out bytes.Buffer
	if err := runBootstrap([]string{"--grpc", "--node", "greeter.default", "--xds", "minimesh:15010"}, &out); err != nil {
		t.Fatal(err)
	}
	var got struct {
		XDSServers []struct {
			ServerURI string `json:"server_uri"`
		} `json:"xds_servers"`
		Node struct {
			ID string `json:"id"`
		} `json:"node"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(got.XDSServers) != 1 || got.XDSServers[0].ServerURI != "minimesh:15010" || got.Node.ID != "greeter.default" {
		t.Errorf("unexpected gRPC bootstrap:\n%s", out.String())
	}
}

func TestRunBootstrapErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no node", nil, "--node is required"},
		{"bad node", []string{"--node", "my-app"}, `bootstrap: node ID "my-app"`},
		{"bad xDS address", []string{"--node", "a.b", "--xds", "minimesh"}, `xDS address "minimesh"`},
		{"extra argument", []string{"--node", "a.b", "envoy.yaml"}, `unexpected argument "envoy.yaml"`},
		{"unknown flag", []string{"--nodes", "a.b"}, "flag provided but not defined: -nodes"},
		{"sotw with grpc", []string{"--node", "a.b", "--grpc", "--sotw"}, "--sotw and --admin are Envoy settings"},
		{"admin with grpc", []string{"--node", "a.b", "--grpc", "--admin", "127.0.0.1:1"}, "--sotw and --admin are Envoy settings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runBootstrap(tc.args, &out)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("runBootstrap(%q) error = %v, want it to contain %q", tc.args, err, tc.wantErr)
			}
			if out.Len() != 0 {
				t.Errorf("printed output despite the error:\n%s", out.String())
			}
		})
	}
}

// decodeEnvoyBootstrap parses Envoy YAML into the Bootstrap proto, refusing
// unknown fields, and validates it.
func decodeEnvoyBootstrap(t *testing.T, y []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("YAML to JSON: %v", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, b); err != nil {
		t.Fatalf("decoding the bootstrap: %v\n%s", err, y)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("ValidateAll: %v", err)
	}
	return b
}
