package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// committedFile is the generated file in the repository, from this
// package's directory.
var committedFile = filepath.Join("..", "..", "examples", "kubernetes", "crds.yaml")

const regenerate = "go run ./cmd/gencrds > examples/kubernetes/crds.yaml"

// TestCommittedCRDsAreUpToDate fails when the committed file is not what
// the generator writes today, e.g. after an istio.io/api upgrade.
func TestCommittedCRDsAreUpToDate(t *testing.T) {
	var fresh bytes.Buffer
	if err := writeCRDs(&fresh); err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(committedFile)
	if err != nil {
		t.Fatalf("%v; create it with: %s", err, regenerate)
	}
	if !bytes.Equal(fresh.Bytes(), committed) {
		line, want, got := firstDifference(fresh.String(), string(committed))
		t.Fatalf("examples/kubernetes/crds.yaml is stale (line %d: generator writes %q, file has %q); regenerate it with:\n\t%s",
			line, want, got, regenerate)
	}
}

// TestGeneratorIsDeterministic renders twice: maps must not leak their
// iteration order into the file.
func TestGeneratorIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := writeCRDs(&a); err != nil {
		t.Fatal(err)
	}
	if err := writeCRDs(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		line, first, second := firstDifference(a.String(), b.String())
		t.Fatalf("two runs differ at line %d: %q vs %q", line, first, second)
	}
}

// TestCRDsPassTheAPIServersValidation runs the checks the API server runs
// when a CRD is created (names, versions, printer columns, and that every
// schema is structural) on each CRD of the committed file.
func TestCRDsPassTheAPIServersValidation(t *testing.T) {
	crds := readCRDs(t, committedFile)
	if len(crds) != len(kinds) {
		t.Fatalf("%s holds %d CRDs, want one per kind (%d)", committedFile, len(crds), len(kinds))
	}
	for _, crd := range crds {
		t.Run(crd.Name, func(t *testing.T) {
			internal := toInternal(t, crd)
			for _, err := range validation.ValidateCustomResourceDefinition(context.Background(), internal) {
				t.Errorf("the API server would refuse this CRD: %v", err)
			}
			// The same check on its own, per version, for a clearer message.
			for _, v := range crd.Spec.Versions {
				var schema apiextensions.JSONSchemaProps
				if err := apiextv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &schema, nil); err != nil {
					t.Fatalf("version %s: %v", v.Name, err)
				}
				for _, err := range structuralErrors(&schema) {
					t.Errorf("version %s: schema is not structural: %v", v.Name, err)
				}
			}
		})
	}
}

// TestStructuralCheckCatchesAMissingType makes sure the check above can
// fail: a field without a type is the classic non-structural schema.
func TestStructuralCheckCatchesAMissingType(t *testing.T) {
	s := objectSchema(kinds[0].spec)
	spec := s.Properties["spec"]
	spec.Properties["host"] = apiextv1.JSONSchemaProps{Description: "no type"}
	s.Properties["spec"] = spec
	var internal apiextensions.JSONSchemaProps
	if err := apiextv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(s, &internal, nil); err != nil {
		t.Fatal(err)
	}
	errs := structuralErrors(&internal)
	if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), "properties[spec].properties[host].type") {
		t.Fatalf("a field without a type passed the structural check: %v", errs)
	}
}

// TestCRDNamesMatchIstio checks the names users type (kubectl get vs) and
// the versions against the values Istio registers, written out here
// independently of kinds.go.
func TestCRDNamesMatchIstio(t *testing.T) {
	want := map[string]struct {
		kind, shortName, storage string
		served                   []string
	}{
		"virtualservices.networking.istio.io":   {"VirtualService", "vs", "v1", []string{"v1alpha3", "v1beta1", "v1"}},
		"destinationrules.networking.istio.io":  {"DestinationRule", "dr", "v1", []string{"v1alpha3", "v1beta1", "v1"}},
		"serviceentries.networking.istio.io":    {"ServiceEntry", "se", "v1", []string{"v1alpha3", "v1beta1", "v1"}},
		"workloadentries.networking.istio.io":   {"WorkloadEntry", "we", "v1", []string{"v1alpha3", "v1beta1", "v1"}},
		"sidecars.networking.istio.io":          {"Sidecar", "", "v1", []string{"v1alpha3", "v1beta1", "v1"}},
		"peerauthentications.security.istio.io": {"PeerAuthentication", "pa", "v1", []string{"v1beta1", "v1"}},
	}
	crds := readCRDs(t, committedFile)
	for _, crd := range crds {
		w, ok := want[crd.Name]
		if !ok {
			t.Errorf("unexpected CRD %s", crd.Name)
			continue
		}
		delete(want, crd.Name)
		names := crd.Spec.Names
		if names.Kind != w.kind || strings.Join(names.ShortNames, ",") != w.shortName {
			t.Errorf("%s: kind %s, short names %v; want %s, [%s]", crd.Name, names.Kind, names.ShortNames, w.kind, w.shortName)
		}
		if !strings.Contains(strings.Join(names.Categories, ","), "istio-io") {
			t.Errorf("%s: categories %v lack istio-io", crd.Name, names.Categories)
		}
		if crd.Spec.Scope != apiextv1.NamespaceScoped {
			t.Errorf("%s: scope %s, want Namespaced", crd.Name, crd.Spec.Scope)
		}
		var served []string
		for _, v := range crd.Spec.Versions {
			if v.Served {
				served = append(served, v.Name)
			}
			if v.Storage != (v.Name == w.storage) {
				t.Errorf("%s: version %s storage=%v, want storage version %s", crd.Name, v.Name, v.Storage, w.storage)
			}
			if v.Subresources == nil || v.Subresources.Status == nil {
				t.Errorf("%s: version %s has no status subresource", crd.Name, v.Name)
			}
		}
		if strings.Join(served, ",") != strings.Join(w.served, ",") {
			t.Errorf("%s: served versions %v, want %v", crd.Name, served, w.served)
		}
	}
	for name := range want {
		t.Errorf("missing CRD %s", name)
	}
}

// readCRDs parses a multi-document file of CRDs.
func readCRDs(t *testing.T, path string) []*apiextv1.CustomResourceDefinition {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; create it with: %s", err, regenerate)
	}
	var crds []*apiextv1.CustomResourceDefinition
	for i, doc := range strings.Split(string(data), "\n---\n") {
		if i == 0 && !strings.Contains(doc, "kind:") {
			continue // the header comment
		}
		crd := &apiextv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict([]byte(doc), crd); err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		crds = append(crds, crd)
	}
	return crds
}

// toInternal defaults and converts a CRD as the API server does on create
// (including the stored version its create strategy records), so that the
// server's own validation can run on it.
func toInternal(t *testing.T, crd *apiextv1.CustomResourceDefinition) *apiextensions.CustomResourceDefinition {
	t.Helper()
	scheme := runtime.NewScheme()
	install.Install(scheme)
	crd = crd.DeepCopy()
	scheme.Default(crd)
	internal := &apiextensions.CustomResourceDefinition{}
	if err := scheme.Convert(crd, internal, nil); err != nil {
		t.Fatalf("%s: %v", crd.Name, err)
	}
	for _, v := range internal.Spec.Versions {
		if v.Storage {
			internal.Status.StoredVersions = []string{v.Name}
		}
	}
	return internal
}

// structuralErrors is what makes a schema non-structural, as the API
// server sees it.
func structuralErrors(s *apiextensions.JSONSchemaProps) field.ErrorList {
	ss, err := structuralschema.NewStructural(s)
	if err != nil {
		return field.ErrorList{field.Invalid(field.NewPath("openAPIV3Schema"), "", err.Error())}
	}
	return structuralschema.ValidateStructural(field.NewPath("openAPIV3Schema"), ss)
}

// firstDifference is the first line (1-based) where a and b differ, and
// that line in each.
func firstDifference(a, b string) (int, string, string) {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return i + 1, x, y
		}
	}
	return 0, "", ""
}
