package mesh

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
)

func TestDecodeMultiDocument(t *testing.T) {
	data := []byte(`---
# a comment-only document, then three objects and a trailing separator
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a, namespace: apps}
spec: {address: 10.0.0.1}
--- # the next one has no namespace
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b}
spec: {address: 10.0.0.2}
---

---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
`)
	objs, diags, err := Decode("dir/f.yaml", data, "fallback")
	if err != nil {
		t.Fatal(err)
	}
	var refs []Ref
	for _, o := range objs {
		refs = append(refs, o.Ref)
	}
	wantRefs := []Ref{
		{Kind: "WorkloadEntry", Namespace: "apps", Name: "a", Source: "dir/f.yaml#1"},
		{Kind: "WorkloadEntry", Namespace: "fallback", Name: "b", Source: "dir/f.yaml#2"},
	}
	if diff := cmp.Diff(wantRefs, refs); diff != "" {
		t.Errorf("refs (-want +got):\n%s", diff)
	}
	wantDiags := []string{"info: dir/f.yaml#3: ConfigMap fallback/c: kind ConfigMap ignored"}
	if diff := cmp.Diff(wantDiags, render(diags)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if got := objs[1].Spec.(*networking.WorkloadEntry).GetAddress(); got != "10.0.0.2" {
		t.Errorf("address of b = %q, want 10.0.0.2", got)
	}
}

func TestDecodeSingleDocumentHasNoIndex(t *testing.T) {
	objs, _, err := Decode("f.yaml", []byte("---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: a}\nspec: {address: 10.0.0.1}\n---\n"), "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Ref.Source != "f.yaml" {
		t.Errorf("got %v, want one object from f.yaml", objs)
	}
}

func TestDecodeSyntaxErrors(t *testing.T) {
	good := "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: a}\nspec: {address: 10.0.0.1}\n"
	tests := []struct {
		name, data, want string
		line             int
	}{
		{
			name: "bad indentation in the second document",
			data: good + "---\n# comment\nkind: VirtualService\n  name: x\n",
			want: "f.yaml:8: mapping values are not allowed in this context",
			line: 8,
		},
		{
			name: "unclosed flow sequence",
			data: good + "---\n" + good + "---\nspec:\n  hosts: [a,\n",
			want: "f.yaml:12: did not find expected node content",
			line: 12,
		},
		{
			name: "duplicate key",
			data: good + "---\nkind: WorkloadEntry\nkind: ServiceEntry\n",
			want: `f.yaml:7: key "kind" already set in map`,
			line: 7,
		},
		{
			name: "no line from the parser",
			data: good + "---\n\tkind: x\n",
			want: "f.yaml: document starting at line 6: found character that cannot start any token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, diags, err := Decode("f.yaml", []byte(tt.data), "default")
			if err == nil {
				t.Fatalf("no error; objects %v, diagnostics %v", objs, diags)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line != tt.line {
				t.Errorf("want a *SyntaxError at line %d, got %#v", tt.line, err)
			}
			if objs != nil || diags != nil {
				t.Errorf("a file with a syntax error must give nothing else; got %v, %v", objs, diags)
			}
		})
	}
}

func TestDecodeAPIVersions(t *testing.T) {
	spec := "kind: VirtualService\nmetadata: {name: vs}\nspec: {hosts: [a], http: [{route: [{destination: {host: a}}], timeout: 2s}]}\n"
	var specs []proto.Message
	for _, v := range []string{"v1", "v1beta1", "v1alpha3"} {
		objs, diags, err := Decode("f.yaml", []byte("apiVersion: networking.istio.io/"+v+"\n"+spec), "default")
		if err != nil || len(diags) != 0 || len(objs) != 1 {
			t.Fatalf("%s: got %v, %v, %v; want one object", v, objs, diags, err)
		}
		specs = append(specs, objs[0].Spec)
	}
	for i := 1; i < len(specs); i++ {
		if !proto.Equal(specs[0], specs[i]) {
			t.Errorf("spec %d = %v, want the same as %v", i, specs[i], specs[0])
		}
	}
	objs, diags, _ := Decode("f.yaml", []byte("apiVersion: networking.istio.io/v2\n"+spec), "default")
	want := []string{`warning: f.yaml: VirtualService default/vs: apiVersion: "networking.istio.io/v2" is not an API version minimesh reads (want networking.istio.io/v1, v1beta1 or v1alpha3); object ignored`}
	if diff := cmp.Diff(want, render(diags)); diff != "" || len(objs) != 0 {
		t.Errorf("unknown version: objects %v, diagnostics (-want +got):\n%s", objs, diff)
	}
}

func TestDecodeDurationsAsIstioWritesThem(t *testing.T) {
	objs, diags, err := Decode("f.yaml", []byte(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr}
spec:
  host: a
  trafficPolicy:
    connectionPool:
      tcp: {connect_timeout: 30ms}
      http: {idleTimeout: 1m30s}
    outlierDetection: {interval: "1.5s", baseEjectionTime: "0"}
`), "default")
	if err != nil || len(diags) != 0 {
		t.Fatalf("got %v, %v", diags, err)
	}
	tp := objs[0].Spec.(*networking.DestinationRule).GetTrafficPolicy()
	got := []time.Duration{
		tp.GetConnectionPool().GetTcp().GetConnectTimeout().AsDuration(),
		tp.GetConnectionPool().GetHttp().GetIdleTimeout().AsDuration(),
		tp.GetOutlierDetection().GetInterval().AsDuration(),
		tp.GetOutlierDetection().GetBaseEjectionTime().AsDuration(),
	}
	want := []time.Duration{30 * time.Millisecond, 90 * time.Second, 1500 * time.Millisecond, 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("durations (-want +got):\n%s", diff)
	}
}

func TestProtoDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                "0s",
		5 * time.Second:                  "5s",
		30 * time.Millisecond:            "0.030000000s",
		-1500 * time.Millisecond:         "-1.500000000s",
		90*time.Second + time.Nanosecond: "90.000000001s",
	} {
		if got := protoDuration(d); got != want {
			t.Errorf("protoDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
