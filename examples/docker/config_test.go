package docker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/api/networking/v1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	"sigs.k8s.io/yaml"
)

// object is one document of the config: an Istio object.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec any `json:"spec"`

	source string // file#index, for errors
}

// kinds gives, for each kind the example uses, its apiVersion and an empty
// spec message.
var kinds = map[string]struct {
	apiVersion string
	spec       func() proto.Message
}{
	"ServiceEntry":       {"networking.istio.io/v1", func() proto.Message { return &networkingv1.ServiceEntry{} }},
	"WorkloadEntry":      {"networking.istio.io/v1", func() proto.Message { return &networkingv1.WorkloadEntry{} }},
	"DestinationRule":    {"networking.istio.io/v1", func() proto.Message { return &networkingv1.DestinationRule{} }},
	"VirtualService":     {"networking.istio.io/v1", func() proto.Message { return &networkingv1.VirtualService{} }},
	"PeerAuthentication": {"security.istio.io/v1beta1", func() proto.Message { return &securityv1beta1.PeerAuthentication{} }},
}

// loadConfig reads every document of config/*.yaml.
func loadConfig(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("config", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no config/*.yaml (%v)", err)
	}
	var objects []object
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocuments(string(data)) {
			o := object{source: fmt.Sprintf("%s#%d", file, i)}
			if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
				t.Fatalf("%s: %v", o.source, err)
			}
			objects = append(objects, o)
		}
	}
	return objects
}

// splitDocuments splits a multi-document YAML file at its "---" lines.
func splitDocuments(data string) []string {
	var docs []string
	for _, doc := range strings.Split("\n"+data, "\n---\n") {
		if strings.TrimSpace(doc) != "" {
			docs = append(docs, doc)
		}
	}
	return docs
}

// TestConfigIsIstio checks that every object is one Istio accepts: a known
// kind, with its apiVersion, whose spec decodes into Istio's own proto
// without unknown fields.
func TestConfigIsIstio(t *testing.T) {
	for _, o := range loadConfig(t) {
		kind, ok := kinds[o.Kind]
		if !ok {
			t.Errorf("%s: unexpected kind %q", o.source, o.Kind)
			continue
		}
		if o.APIVersion != kind.apiVersion {
			t.Errorf("%s: %s: apiVersion %q, want %s", o.source, o.Kind, o.APIVersion, kind.apiVersion)
		}
		newSpec := kind.spec
		if o.Metadata.Name == "" || o.Metadata.Namespace == "" {
			t.Errorf("%s: %s needs metadata.name and metadata.namespace", o.source, o.Kind)
		}
		j, err := json.Marshal(o.Spec)
		if err == nil {
			err = protojson.Unmarshal(j, newSpec())
		}
		if err != nil {
			t.Errorf("%s: %s %s: spec: %v", o.source, o.Kind, o.Metadata.Name, err)
		}
	}
}

// workloadAddresses maps each WorkloadEntry's node ID ("name.namespace") to
// its address.
func workloadAddresses(t *testing.T) map[string]string {
	t.Helper()
	addresses := map[string]string{}
	for _, o := range loadConfig(t) {
		if o.Kind != "WorkloadEntry" {
			continue
		}
		spec, _ := o.Spec.(map[string]any)
		address, _ := spec["address"].(string)
		addresses[o.Metadata.Name+"."+o.Metadata.Namespace] = address
	}
	return addresses
}
