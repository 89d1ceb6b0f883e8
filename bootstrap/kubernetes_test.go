package bootstrap

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

// TestKubernetesEnvoyYAMLRoundTrip reads the YAML back as Envoy does
// (unknown fields refused), validates it, and validates the messages packed
// in Anys, which ValidateAll skips.
func TestKubernetesEnvoyYAMLRoundTrip(t *testing.T) {
	for name, o := range map[string]KubernetesOptions{
		"defaults": {},
		"sotw":     {SotW: true, XDSAddress: "xds.example:443"},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := KubernetesEnvoy(o)
			if err != nil {
				t.Fatal(err)
			}
			y, err := KubernetesEnvoyYAML(o)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(string(y), "$(") != 1 {
				t.Errorf("the bootstrap must hold exactly one kubelet reference, $(POD_NAMESPACE):\n%s", y)
			}
			got := decodeYAML(t, y)
			if err := got.ValidateAll(); err != nil {
				t.Errorf("ValidateAll after round trip: %v", err)
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("round trip changed the bootstrap (-want +got):\n%s", diff)
			}
			for _, l := range got.GetStaticResources().GetListeners() {
				for _, fc := range l.GetFilterChains() {
					for _, f := range fc.GetFilters() {
						hcm := &hcmv3.HttpConnectionManager{}
						if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
							t.Fatalf("listener %s: %v", l.GetName(), err)
						}
						if err := hcm.ValidateAll(); err != nil {
							t.Errorf("listener %s: %v", l.GetName(), err)
						}
						for _, hf := range hcm.GetHttpFilters() {
							if err := hf.GetTypedConfig().UnmarshalTo(&routerv3.Router{}); err != nil {
								t.Errorf("listener %s: filter %s: %v", l.GetName(), hf.GetName(), err)
							}
						}
					}
				}
			}
		})
	}
}

// TestKubernetesEnvoyAuthentication checks, field by field, what makes the
// xDS stream authenticated: TLS to the Service name with the mesh root,
// and the projected token exchanged at the STS endpoint.
func TestKubernetesEnvoyAuthentication(t *testing.T) {
	b, err := KubernetesEnvoy(KubernetesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ads := b.GetDynamicResources().GetAdsConfig()
	if ads.GetApiType() != corev3.ApiConfigSource_DELTA_GRPC {
		t.Errorf("api_type = %v, want DELTA_GRPC", ads.GetApiType())
	}
	if n := len(ads.GetGrpcServices()); n != 1 {
		t.Fatalf("%d gRPC services, want 1", n)
	}
	g := ads.GetGrpcServices()[0].GetGoogleGrpc()
	if g.GetTargetUri() != "minimesh.minimesh-system.svc:15010" {
		t.Errorf("target_uri = %q", g.GetTargetUri())
	}
	if got := g.GetChannelCredentials().GetSslCredentials().GetRootCerts().GetFilename(); got != "/etc/minimesh/ca/root-cert.pem" {
		t.Errorf("root_certs = %q", got)
	}
	if n := len(g.GetCallCredentials()); n != 1 {
		t.Fatalf("%d call credentials, want 1", n)
	}
	sts := g.GetCallCredentials()[0].GetStsService()
	want := []string{"https://minimesh.minimesh-system.svc:15014/token", "/var/run/secrets/tokens/minimesh-token", "urn:ietf:params:oauth:token-type:jwt"}
	got := []string{sts.GetTokenExchangeServiceUri(), sts.GetSubjectTokenPath(), sts.GetSubjectTokenType()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sts_service (-want +got):\n%s", diff)
	}
	md := b.GetNode().GetMetadata().AsMap()
	if md["NAMESPACE"] != "$(POD_NAMESPACE)" || md["INTERCEPTION_MODE"] != "REDIRECT" {
		t.Errorf("node metadata = %v", md)
	}
	if b.GetNode().GetId() != "" {
		t.Errorf("node id = %q: it must come from --service-node, per pod", b.GetNode().GetId())
	}
}

func TestKubernetesEnvoyRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		o    KubernetesOptions
		want string
	}{
		"IP address":       {KubernetesOptions{XDSAddress: "10.0.0.1:15010"}, "DNS name"},
		"no port":          {KubernetesOptions{XDSAddress: "minimesh"}, "host:port"},
		"plain http STS":   {KubernetesOptions{TokenExchangeURL: "http://minimesh:15014/token"}, "https"},
		"relative token":   {KubernetesOptions{TokenPath: "tokens/minimesh"}, "token path"},
		"relative root CA": {KubernetesOptions{RootCertPath: "root.pem"}, "root certificate path"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := KubernetesEnvoy(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
