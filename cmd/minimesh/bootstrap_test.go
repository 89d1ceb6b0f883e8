package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
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
		{"defaults", []string{"--node", "my-app-v1.default", "--insecure-xds"}, corev3.ApiConfigSource_DELTA_GRPC, "127.0.0.1", 15000},
		{"sotw", []string{"--node", "my-app-v1.default", "--sotw", "--insecure-xds"}, corev3.ApiConfigSource_GRPC, "127.0.0.1", 15000},
		{"every flag", []string{"--node=a.b", "--xds=minimesh:15010", "--admin=0.0.0.0:9901", "--insecure-xds"}, corev3.ApiConfigSource_DELTA_GRPC, "minimesh", 9901},
		{"TLS", []string{"--node=a.b", "--xds=minimesh:15010", "--certs=/etc/certs"}, corev3.ApiConfigSource_DELTA_GRPC, "minimesh", 15000},
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

// TestRunBootstrapXDSSecurity checks what --certs and --insecure-xds do to
// the connection to minimesh.
func TestRunBootstrapXDSSecurity(t *testing.T) {
	t.Run("Envoy with --certs: mutual TLS", func(t *testing.T) {
		var out bytes.Buffer
		if err := runBootstrap([]string{"--node", "a.b", "--xds", "minimesh:15010", "--certs", "/etc/certs"}, &out); err != nil {
			t.Fatal(err)
		}
		b := decodeEnvoyBootstrap(t, out.Bytes())
		ts := b.GetStaticResources().GetClusters()[0].GetTransportSocket()
		ctx := &tlsv3.UpstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
			t.Fatalf("transport socket %v: %v", ts, err)
		}
		// The files come through file-based SDS from the --certs directory.
		c := ctx.GetCommonTlsContext()
		certSDS := c.GetTlsCertificateSdsSecretConfigs()[0].GetSdsConfig().GetPathConfigSource()
		if certSDS.GetPath() != "/etc/certs/envoy-sds.yaml" || certSDS.GetWatchedDirectory().GetPath() != "/etc/certs" {
			t.Errorf("certificate SDS source = %v, want /etc/certs/envoy-sds.yaml watching /etc/certs", certSDS)
		}
		rootsSDS := c.GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetSdsConfig().GetPathConfigSource()
		if rootsSDS.GetPath() != "/etc/certs/envoy-sds.yaml" {
			t.Errorf("trust bundle SDS source = %v, want /etc/certs/envoy-sds.yaml", rootsSDS)
		}
		if !strings.Contains(out.String(), "--certs /etc/certs\n") {
			t.Errorf("the header does not give --certs:\n%s", out.String())
		}
	})
	t.Run("Envoy with --insecure-xds: plaintext, and says so", func(t *testing.T) {
		var out bytes.Buffer
		if err := runBootstrap([]string{"--node", "a.b", "--insecure-xds"}, &out); err != nil {
			t.Fatal(err)
		}
		if ts := decodeEnvoyBootstrap(t, out.Bytes()).GetStaticResources().GetClusters()[0].GetTransportSocket(); ts != nil {
			t.Errorf("transport_socket = %v, want none", ts)
		}
		if !strings.Contains(out.String(), "# WARNING: xDS in plaintext") {
			t.Errorf("no warning in\n%s", out.String())
		}
	})
	grpcCases := []struct {
		name          string
		args          []string
		wantCreds     string
		wantProviders bool
	}{
		{"gRPC with --certs: mutual TLS and a certificate provider", []string{"--certs", "/etc/certs"}, "tls", true},
		{"gRPC with --certs --insecure-xds: a certificate provider", []string{"--certs", "/etc/certs", "--insecure-xds"}, "insecure", true},
		{"gRPC with --insecure-xds: neither", []string{"--insecure-xds"}, "insecure", false},
	}
	for _, tc := range grpcCases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := runBootstrap(append([]string{"--grpc", "--node", "a.b"}, tc.args...), &out); err != nil {
				t.Fatal(err)
			}
			var got struct {
				XDSServers []struct {
					ChannelCreds []struct {
						Type string `json:"type"`
					} `json:"channel_creds"`
				} `json:"xds_servers"`
				CertificateProviders map[string]any `json:"certificate_providers"`
			}
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if creds := got.XDSServers[0].ChannelCreds; len(creds) != 1 || creds[0].Type != tc.wantCreds {
				t.Errorf("channel_creds = %+v, want [%s]", creds, tc.wantCreds)
			}
			if has := got.CertificateProviders["default"] != nil; has != tc.wantProviders {
				t.Errorf("certificate provider \"default\" defined: %v, want %v\n%s", has, tc.wantProviders, out.String())
			}
		})
	}
}

func TestRunBootstrapGRPC(t *testing.T) {
	var out bytes.Buffer
	if err := runBootstrap([]string{"--grpc", "--node", "greeter.default", "--xds", "minimesh:15010", "--insecure-xds"}, &out); err != nil {
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
		{"no node", []string{"--insecure-xds"}, "--node is required"},
		{"bad node", []string{"--node", "my-app", "--insecure-xds"}, `bootstrap: node ID "my-app"`},
		{"bad xDS address", []string{"--node", "a.b", "--xds", "minimesh", "--insecure-xds"}, `xDS address "minimesh"`},
		{"extra argument", []string{"--node", "a.b", "--insecure-xds", "envoy.yaml"}, `unexpected argument "envoy.yaml"`},
		{"unknown flag", []string{"--nodes", "a.b"}, "flag provided but not defined: -nodes"},
		{"sotw with grpc", []string{"--node", "a.b", "--grpc", "--sotw", "--insecure-xds"}, "--sotw and --admin are Envoy settings"},
		{"admin with grpc", []string{"--node", "a.b", "--grpc", "--admin", "127.0.0.1:1", "--insecure-xds"}, "--sotw and --admin are Envoy settings"},
		{"neither certs nor insecure (Envoy)", []string{"--node", "a.b"}, "pass --certs DIR (written by `minimesh certs issue --out DIR`), or --insecure-xds"},
		{"neither certs nor insecure (gRPC)", []string{"--node", "a.b", "--grpc"}, "pass --certs DIR"},
		{"empty certs", []string{"--node", "a.b", "--certs", ""}, "--certs needs a directory"},
		{"certs and insecure for Envoy", []string{"--node", "a.b", "--certs", "/c", "--insecure-xds"}, "--certs is used only for xDS over TLS"},
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
