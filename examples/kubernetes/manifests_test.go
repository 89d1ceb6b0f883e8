package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	apiextinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/minimesh/minimesh/mesh"
)

// installFiles are what `kubectl apply -f examples/kubernetes/` applies, in
// the order it applies them (kubectl walks a directory in lexical order).
var installFiles = []string{"00-namespace.yaml", "crds.yaml", "rbac.yaml", "server.yaml", "service.yaml", "webhook.yaml"}

// demoFiles are what `kubectl apply -f examples/kubernetes/demo/` applies.
var demoFiles = []string{
	"demo/00-namespace.yaml", "demo/client.yaml", "demo/destination-rule.yaml",
	"demo/my-app.yaml", "demo/peer-authentication.yaml", "demo/virtual-service.yaml",
}

// strictFile is the walkthrough's second mTLS step.
const strictFile = "demo/strict/peer-authentication.yaml"

// TestFileListsAreComplete keeps the lists above in step with the
// directories, so that a new manifest is not left untested.
func TestFileListsAreComplete(t *testing.T) {
	for dir, want := range map[string][]string{
		".":           installFiles,
		"demo":        demoFiles,
		"demo/strict": {strictFile},
	} {
		got, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !equalStrings(got, want) {
			t.Errorf("%s holds %v, the tests list %v", dir, got, want)
		}
	}
}

// kubeScheme knows every built-in kind and CustomResourceDefinition.
func kubeScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	apiextinstall.Install(s)
	return s
}

// TestEveryManifestParses decodes every document strictly: a misspelt or
// misplaced field, which kubectl would only warn about, fails here. The
// Istio kinds go through minimesh's own decoder, which must have nothing
// to say about them.
func TestEveryManifestParses(t *testing.T) {
	strict := serializer.NewCodecFactory(kubeScheme(), serializer.EnableStrict).UniversalDeserializer()
	for _, file := range allFiles() {
		for i, doc := range readDocuments(t, file) {
			if isIstio(doc) {
				objs, diags, err := mesh.Decode(file, doc, "default")
				if err != nil || len(objs) != 1 || len(diags) > 0 {
					t.Errorf("%s#%d: minimesh decodes %d objects, problems %v %v", file, i+1, len(objs), err, diags)
				}
				continue
			}
			if _, gvk, err := strict.Decode(doc, nil, nil); err != nil {
				t.Errorf("%s#%d: %v", file, i+1, err)
			} else if gvk.Kind == "" {
				t.Errorf("%s#%d: no kind", file, i+1)
			}
		}
	}
}

// TestStrictDecodingCatchesAMisspeltField shows that the test above can
// fail.
func TestStrictDecodingCatchesAMisspeltField(t *testing.T) {
	strict := serializer.NewCodecFactory(kubeScheme(), serializer.EnableStrict).UniversalDeserializer()
	doc := []byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  selectr: {app: x}\n")
	if _, _, err := strict.Decode(doc, nil, nil); err == nil {
		t.Fatal("a Service with spec.selectr decoded without error")
	}
}

func allFiles() []string {
	return append(append(append([]string{}, installFiles...), demoFiles...), strictFile)
}

// isIstio reports whether a document is an object of an Istio API group.
func isIstio(doc []byte) bool {
	return bytes.Contains(doc, []byte("apiVersion: networking.istio.io/")) ||
		bytes.Contains(doc, []byte("apiVersion: security.istio.io/"))
}

// readDocuments splits a YAML file into its non-empty documents, dropping
// those that hold only comments (crds.yaml's header).
func readDocuments(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if hasContent(doc) {
			docs = append(docs, doc)
		}
	}
}

// hasContent reports whether a document has a line that is neither blank
// nor a comment.
func hasContent(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && !bytes.Equal(line, []byte("---")) {
			return true
		}
	}
	return false
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if filepath.ToSlash(a[i]) != b[i] {
			return false
		}
	}
	return true
}
