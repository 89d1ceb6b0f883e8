package kube

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/minimesh/minimesh/mesh"
)

// published collects the snapshots a watcher publishes, with the time each
// arrived.
type published struct {
	mu    sync.Mutex
	snaps []*mesh.Snapshot
	times []time.Time
	next  int // the first snapshot waitFor has not looked at
	more  chan struct{}
}

func newPublished() *published { return &published{more: make(chan struct{}, 1)} }

// publish is the watcher's publish callback.
func (p *published) publish(s *mesh.Snapshot) {
	p.mu.Lock()
	p.snaps = append(p.snaps, s)
	p.times = append(p.times, time.Now())
	p.mu.Unlock()
	select {
	case p.more <- struct{}{}:
	default:
	}
}

// count returns how many snapshots were published.
func (p *published) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.snaps)
}

// all returns every snapshot published so far.
func (p *published) all() []*mesh.Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.snaps)
}

// latest returns the last snapshot published.
func (p *published) latest() *mesh.Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snaps[len(p.snaps)-1]
}

// waitFor returns the first snapshot not seen yet for which ok holds, and
// when it was published; it fails the test after timeout.
func (p *published) waitFor(t *testing.T, what string, timeout time.Duration, ok func(*mesh.Snapshot) bool) (*mesh.Snapshot, time.Time) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for ; p.next < len(p.snaps); p.next++ {
			if ok(p.snaps[p.next]) {
				s, at := p.snaps[p.next], p.times[p.next]
				p.next++
				p.mu.Unlock()
				return s, at
			}
		}
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-deadline:
			t.Fatalf("no snapshot with %s published within %s", what, timeout)
		}
	}
}

// runWatcher runs w until the test ends, and returns what it publishes and
// a channel that gets Run's result.
func runWatcher(t *testing.T, w *Watcher) (*published, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := newPublished()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, p.publish) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context ending")
		}
	})
	return p, done
}

// istioObjects decodes the Istio objects of every YAML file in dir into the
// typed objects of istio.io/client-go, in namespace "default" unless they
// name one. It is the test's own decoder, independent of mesh.Decode.
func istioObjects(t *testing.T, dir string) []runtime.Object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML in %s: %v", dir, err)
	}
	var out []runtime.Object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if obj := typedIstioObject(t, f, doc); obj != nil {
				out = append(out, obj)
			}
		}
	}
	return out
}

// typedIstioObject decodes one document, or returns nil when it is empty.
func typedIstioObject(t *testing.T, file string, doc []byte) runtime.Object {
	t.Helper()
	var head struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var obj runtime.Object
	switch head.Kind {
	case "":
		return nil
	case "VirtualService":
		obj = &networkingv1.VirtualService{}
	case "DestinationRule":
		obj = &networkingv1.DestinationRule{}
	case "ServiceEntry":
		obj = &networkingv1.ServiceEntry{}
	case "WorkloadEntry":
		obj = &networkingv1.WorkloadEntry{}
	case "PeerAuthentication":
		obj = &securityv1.PeerAuthentication{}
	default:
		t.Fatalf("%s: kind %s not expected in the test data", file, head.Kind)
	}
	if err := yaml.Unmarshal(doc, obj); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	m := obj.(interface {
		GetNamespace() string
		SetNamespace(string)
	})
	if m.GetNamespace() == "" {
		m.SetNamespace("default")
	}
	return obj
}
