package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minimesh/minimesh/mesh"
)

// canaryDir is the example every test starts from: one service (my-app),
// two workloads, a 90/10 VirtualService and a DestinationRule.
const canaryDir = "../../examples/canary"

// copyCanary copies examples/canary into a fresh temporary directory and
// returns the directory.
func copyCanary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(canaryDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(canaryDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, e.Name()), string(data))
	}
	return dir
}

// writeFile creates (or truncates) a file, creating its directory.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// removeFile deletes a file.
func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// canaryVS is the canary VirtualService with the given weights. With
// two-digit weights it has the same length as examples/canary's, so it can
// be written over it in place.
func canaryVS(v1, v2 int) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: my-app-vs
spec:
  hosts:
  - my-app
  http:
  - route:
    - destination:
        host: my-app
        subset: v1
      weight: %d
    - destination:
        host: my-app
        subset: v2
      weight: %d
`, v1, v2)
}

// serviceEntry is a STATIC ServiceEntry with one inline endpoint.
func serviceEntry(name, host, addr string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %s, namespace: default}
spec:
  hosts: [%s]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: http, protocol: HTTP}
  endpoints:
  - address: %s
`, name, host, addr)
}

// routeTo is a VirtualService sending all of host to host.
func routeTo(name, host string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %s, namespace: default}
spec:
  hosts: [%s]
  http:
  - route:
    - destination: {host: %s}
`, name, host, host)
}

// destinationRule is a DestinationRule with no subsets.
func destinationRule(name, host string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %s, namespace: default}
spec:
  host: %s
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
`, name, host)
}

// errorProblems returns the problems that are errors: anything but a
// Diagnostic of info or warning severity.
func errorProblems(problems []error) []error {
	var out []error
	for _, p := range problems {
		var d mesh.Diagnostic
		if errors.As(p, &d) && d.Severity != mesh.SeverityError {
			continue
		}
		out = append(out, p)
	}
	return out
}

// problemContaining returns the first problem whose message contains every
// one of words, or nil.
func problemContaining(problems []error, words ...string) error {
	for _, p := range problems {
		msg := p.Error()
		if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(msg, w) }) {
			return p
		}
	}
	return nil
}

// hostnames lists the services of a snapshot.
func hostnames(s *mesh.Snapshot) []string {
	var out []string
	for _, svc := range s.Services {
		out = append(out, svc.Hostname)
	}
	return out
}

// vsNames lists the VirtualServices of a snapshot as namespace/name.
func vsNames(s *mesh.Snapshot) []string {
	var out []string
	for _, vs := range s.VirtualServices {
		out = append(out, vs.Namespace+"/"+vs.Name)
	}
	return out
}

// drNames lists the DestinationRules of a snapshot as namespace/name.
func drNames(s *mesh.Snapshot) []string {
	var out []string
	for _, dr := range s.DestinationRules {
		out = append(out, dr.Namespace+"/"+dr.Name)
	}
	return out
}

// canaryWeights returns the weights of my-app-vs's first rule, or nil when
// the VirtualService is not in the snapshot.
func canaryWeights(s *mesh.Snapshot) []uint32 {
	for _, vs := range s.VirtualServices {
		if vs.Namespace != "default" || vs.Name != "my-app-vs" || len(vs.HTTP) == 0 {
			continue
		}
		var out []uint32
		for _, d := range vs.HTTP[0].Route {
			out = append(out, d.Weight)
		}
		return out
	}
	return nil
}

// hasWeights reports whether my-app-vs is served with the given weights.
func hasWeights(s *mesh.Snapshot, want ...uint32) bool {
	return slices.Equal(canaryWeights(s), want)
}

// load runs Load and fails the test if the directory cannot be read.
func load(t *testing.T, w *Watcher) (*mesh.Snapshot, []error) {
	t.Helper()
	snap, problems, err := w.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if snap == nil {
		t.Fatal("Load returned no snapshot")
	}
	return snap, problems
}

// logProblems shows the problems of a load, to help read a failure.
func logProblems(t *testing.T, problems []error) {
	t.Helper()
	for _, p := range problems {
		t.Logf("problem: %v", p)
	}
}
