package bootstrap

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// goldenCases pairs each golden file with the options that produce it.
var goldenCases = []struct {
	file string
	make func() ([]byte, error)
}{
	{"envoy-delta-ip.yaml", func() ([]byte, error) {
		return EnvoyYAML(EnvoyOptions{NodeID: "my-app-v1.default", XDSAddress: "10.0.0.1:15010", Delta: true})
	}},
	{"envoy-sotw-dns.yaml", func() ([]byte, error) {
		return EnvoyYAML(EnvoyOptions{
			NodeID:       "web.shop",
			XDSAddress:   "minimesh.mesh-system.svc:15010",
			AdminAddress: "0.0.0.0:9901",
		})
	}},
	{"envoy-tls-dns.yaml", func() ([]byte, error) {
		return EnvoyYAML(EnvoyOptions{
			NodeID:     "my-app-v1.default",
			XDSAddress: "minimesh:15010",
			Delta:      true,
			XDSTLS:     true,
			CertDir:    "/etc/minimesh/certs",
		})
	}},
	{"envoy-tls-ip-sotw.yaml", func() ([]byte, error) {
		return EnvoyYAML(EnvoyOptions{NodeID: "web.shop", XDSAddress: "10.0.0.1:15012", XDSTLS: true, CertDir: "/var/run/minimesh"})
	}},
	{"envoy-kubernetes.yaml", func() ([]byte, error) {
		return KubernetesEnvoyYAML(KubernetesOptions{})
	}},
	{"envoy-kubernetes-sotw.yaml", func() ([]byte, error) {
		return KubernetesEnvoyYAML(KubernetesOptions{
			XDSAddress:       "xds.mesh.svc.cluster.local:15012",
			TokenExchangeURL: "https://xds.mesh.svc.cluster.local:15014/sts",
			TokenPath:        "/var/run/tokens/xds",
			RootCertPath:     "/etc/mesh/root.pem",
			SotW:             true,
		})
	}},
	{"grpc.json", func() ([]byte, error) {
		return GRPC(GRPCOptions{NodeID: "greeter-client.default", XDSAddress: "minimesh:15010"})
	}},
	{"grpc-certs.json", func() ([]byte, error) {
		return GRPC(GRPCOptions{NodeID: "greeter-server.default", XDSAddress: "minimesh:15010", CertDir: "/etc/minimesh/certs"})
	}},
	{"grpc-tls.json", func() ([]byte, error) {
		return GRPC(GRPCOptions{NodeID: "greeter-client.default", XDSAddress: "minimesh:15010", CertDir: "/etc/minimesh/certs", XDSTLS: true})
	}},
}

// TestGolden compares the generated files with the ones in testdata/, which
// were first written by hand. Run `go test ./bootstrap -update` to accept a
// change, then review the diff.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			got, err := tc.make()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got); run with -update to accept:\n%s", path, diff)
			}
		})
	}
}
