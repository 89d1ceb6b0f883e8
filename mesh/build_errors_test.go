package mesh

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// buildCase adds objects to the canary and checks every diagnostic (exact
// text: file, object, field, message) and what the snapshot holds, so that a
// bad object is seen to be left out and everything else to be kept.
type buildCase struct {
	name string
	yaml string // decoded as "test.yaml" in namespace default
	// want is every diagnostic of Decode and Build, as "<severity>: <text>".
	want []string
	// added is what the objects add to the canary's snapshot (see contents).
	added []string
}

// canaryContents is what the canary alone puts in a snapshot.
var canaryContents = []string{
	"DestinationRule default/my-app-dr: my-app.default.svc.cluster.local",
	"Service my-app.default.svc.cluster.local (default/my-app)",
	"VirtualService default/my-app-vs: my-app.default.svc.cluster.local",
	"Workload default/my-app-v1",
	"Workload default/my-app-v2",
}

// contents lists what a snapshot holds, one line per object, sorted.
func contents(snap *Snapshot) []string {
	var out []string
	for _, s := range snap.Services {
		out = append(out, fmt.Sprintf("Service %s (%s/%s)", s.Hostname, s.Source.Namespace, s.Source.Name))
	}
	for _, w := range snap.Workloads {
		out = append(out, fmt.Sprintf("Workload %s/%s", w.Namespace, w.Name))
	}
	for _, vs := range snap.VirtualServices {
		out = append(out, fmt.Sprintf("VirtualService %s/%s: %s", vs.Namespace, vs.Name, strings.Join(vs.Hosts, " ")))
	}
	for _, dr := range snap.DestinationRules {
		out = append(out, fmt.Sprintf("DestinationRule %s/%s: %s", dr.Namespace, dr.Name, dr.Host))
	}
	for _, pa := range snap.PeerAuthentications {
		out = append(out, fmt.Sprintf("PeerAuthentication %s/%s", pa.Namespace, pa.Name))
	}
	slices.Sort(out)
	return out
}

// render writes diagnostics as "<severity>: <text>".
func render(diags []Diagnostic) []string {
	var out []string
	for _, d := range diags {
		out = append(out, d.Severity.String()+": "+d.Error())
	}
	return out
}

// runBuildCases runs the cases of one kind.
func runBuildCases(t *testing.T, cases []buildCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := decodeFile(t, "testdata/canary.yaml", "canary.yaml")
			objs, diags, err := Decode("test.yaml", []byte(c.yaml), "default")
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			snap, more := Build(append(base, objs...), Options{})
			// PRINT_DIAGS=1 prints what came out as Go literals, to help
			// write a new case; read every line before pasting it.
			if os.Getenv("PRINT_DIAGS") != "" {
				for _, d := range render(append(diags, more...)) {
					fmt.Printf("\t\t\t\t%q,\n", d)
				}
			}
			if diff := cmp.Diff(c.want, render(append(diags, more...))); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			want := slices.Concat(canaryContents, c.added)
			slices.Sort(want)
			if diff := cmp.Diff(want, contents(snap)); diff != "" {
				t.Errorf("snapshot contents (-want +got):\n%s", diff)
			}
		})
	}
}
