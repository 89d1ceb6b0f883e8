package mesh

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/reflect/protoreflect"
	networking "istio.io/api/networking/v1alpha3"
)

// TestSupportedFieldsExist checks every allowlist entry against the Istio
// descriptors, so that a misspelled entry cannot silently turn a supported
// field into a warning.
func TestSupportedFieldsExist(t *testing.T) {
	for kind, newSpec := range kinds {
		paths := SupportedFields(kind)
		if len(paths) == 0 {
			t.Errorf("%s: no supported fields", kind)
		}
		for _, path := range paths {
			if err := checkFieldPath(newSpec().ProtoReflect().Descriptor(), path); err != "" {
				t.Errorf("%s: %q: %s", kind, path, err)
			}
		}
	}
}

// checkFieldPath follows a dotted allowlist path through md, looking
// through lists and maps, and says what is wrong with it ("" if nothing).
func checkFieldPath(md protoreflect.MessageDescriptor, path string) string {
	names := strings.Split(path, ".")
	for i, name := range names {
		if md == nil {
			return "goes below a field that is not a message"
		}
		fd := md.Fields().ByJSONName(name)
		if fd == nil {
			return "no field " + name + " in " + string(md.FullName())
		}
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		md = fd.Message()
		if i < len(names)-1 && md != nil && md.ParentFile().Package() == "google.protobuf" {
			return "goes inside well-known type " + string(md.FullName())
		}
	}
	return ""
}

func TestSupportedKinds(t *testing.T) {
	want := []string{"DestinationRule", "PeerAuthentication", "ServiceEntry", "Sidecar", "VirtualService", "WorkloadEntry"}
	if diff := cmp.Diff(want, SupportedKinds()); diff != "" {
		t.Errorf("SupportedKinds (-want +got):\n%s", diff)
	}
	for kind := range kinds {
		if !slices.Contains(SupportedKinds(), kind) {
			t.Errorf("kind %s is decoded but has no allowlist", kind)
		}
	}
}

func TestSupportedFieldsIsACopy(t *testing.T) {
	SupportedFields("VirtualService")[0] = "changed"
	if got := SupportedFields("VirtualService")[0]; got != "hosts" {
		t.Errorf("SupportedFields shares its slice: first entry now %q", got)
	}
	if got := SupportedFields("Gateway"); got != nil {
		t.Errorf("SupportedFields(Gateway) = %q, want nil", got)
	}
}

func TestUnsupportedFields(t *testing.T) {
	obj := Object{
		Ref: Ref{Kind: "DestinationRule", Namespace: "shop", Name: "api", Source: "kubernetes"},
		Spec: &networking.DestinationRule{
			Host: "api",
			Subsets: []*networking.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", TrafficPolicy: &networking.TrafficPolicy{
					LoadBalancer: &networking.LoadBalancerSettings{
						LbPolicy: &networking.LoadBalancerSettings_Simple{Simple: networking.LoadBalancerSettings_RANDOM},
					},
					Tls: &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_SIMPLE, CaCrl: "crl.pem"},
				}},
			},
		},
	}
	want := []string{"kubernetes: DestinationRule shop/api: spec.subsets[1].trafficPolicy.tls.caCrl: not supported by minimesh, ignored"}
	var got []string
	for _, d := range UnsupportedFields(obj) {
		if d.Severity != SeverityWarning {
			t.Errorf("severity %v, want warning", d.Severity)
		}
		got = append(got, d.Error())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UnsupportedFields (-want +got):\n%s", diff)
	}
}
