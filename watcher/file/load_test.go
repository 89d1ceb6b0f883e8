package file

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/minimesh/minimesh/mesh"
)

func TestLoadCanary(t *testing.T) {
	w := New(Config{Dir: copyCanary(t)})
	snap, problems := load(t, w)
	logProblems(t, problems)

	if errs := errorProblems(problems); len(errs) > 0 {
		t.Errorf("error problems: %v", errs)
	}
	if got, want := hostnames(snap), []string{"my-app.default.svc.cluster.local"}; !slices.Equal(got, want) {
		t.Fatalf("services = %v, want %v", got, want)
	}
	var eps []string
	for _, e := range snap.Services[0].Endpoints {
		eps = append(eps, e.Labels["version"])
	}
	if want := []string{"v1", "v2"}; !slices.Equal(eps, want) {
		t.Errorf("endpoints of my-app (by version label) = %v, want %v", eps, want)
	}
	if got, want := vsNames(snap), []string{"default/my-app-vs"}; !slices.Equal(got, want) {
		t.Errorf("VirtualServices = %v, want %v", got, want)
	}
	if got := canaryWeights(snap); !slices.Equal(got, []uint32{90, 10}) {
		t.Errorf("my-app-vs weights = %v, want [90 10]", got)
	}
	if got, want := drNames(snap), []string{"default/my-app-dr"}; !slices.Equal(got, want) {
		t.Errorf("DestinationRules = %v, want %v", got, want)
	}
	if snap.DomainSuffix != "cluster.local" {
		t.Errorf("DomainSuffix = %q, want cluster.local", snap.DomainSuffix)
	}
}

func TestLoadMissingDir(t *testing.T) {
	w := New(Config{Dir: filepath.Join(t.TempDir(), "nope")})
	if _, _, err := w.Load(); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Load of a missing directory: err = %v, want one naming the directory", err)
	}
}

// Sub-directories are read at any depth; hidden files and directories and
// files that are not YAML are not; a file may hold several documents.
func TestLoadWhichFiles(t *testing.T) {
	dir := t.TempDir()
	// Read: two documents in one file, .yml, sub-directories.
	writeFile(t, filepath.Join(dir, "services.yaml"),
		serviceEntry("a", "a.example.com", "10.0.0.1")+"---\n"+serviceEntry("b", "b.example.com", "10.0.0.2"))
	writeFile(t, filepath.Join(dir, "team", "routes.yml"),
		"# comment before the first document\n---\n"+routeTo("b-vs", "b.example.com")+"---\n---\n"+destinationRule("b-dr", "b.example.com"))
	writeFile(t, filepath.Join(dir, "team", "deeper", "still", "c.yaml"), serviceEntry("c", "c.example.com", "10.0.0.3"))
	// Not read: hidden files, hidden directories (top level and nested),
	// other extensions.
	writeFile(t, filepath.Join(dir, ".hidden.yaml"), serviceEntry("hidden-file", "hidden-file.example.com", "10.0.1.1"))
	writeFile(t, filepath.Join(dir, ".git", "config.yaml"), serviceEntry("git", "git.example.com", "10.0.1.2"))
	writeFile(t, filepath.Join(dir, "team", ".cache", "x.yaml"), serviceEntry("cache", "cache.example.com", "10.0.1.3"))
	writeFile(t, filepath.Join(dir, "team", ".routes.yml.swp"), routeTo("swap", "a.example.com"))
	writeFile(t, filepath.Join(dir, "notes.txt"), serviceEntry("txt", "txt.example.com", "10.0.1.4"))
	writeFile(t, filepath.Join(dir, "services.yaml.bak"), serviceEntry("bak", "bak.example.com", "10.0.1.5"))
	writeFile(t, filepath.Join(dir, "README.md"), "# not config\n")

	w := New(Config{Dir: dir})
	snap, problems := load(t, w)
	logProblems(t, problems)
	if errs := errorProblems(problems); len(errs) > 0 {
		t.Errorf("error problems: %v", errs)
	}
	if got, want := hostnames(snap), []string{"a.example.com", "b.example.com", "c.example.com"}; !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
	if got, want := vsNames(snap), []string{"default/b-vs"}; !slices.Equal(got, want) {
		t.Errorf("VirtualServices = %v, want %v", got, want)
	}
	if got, want := drNames(snap), []string{"default/b-dr"}; !slices.Equal(got, want) {
		t.Errorf("DestinationRules = %v, want %v", got, want)
	}
	// Objects say which file and which document they came from.
	if len(snap.Services) > 1 {
		if src, want := snap.Services[1].Source.Source, filepath.Join(filepath.Base(dir), "services.yaml#2"); src != want {
			t.Errorf("source of b = %q, want %q", src, want)
		}
	}
	if len(snap.DestinationRules) == 1 {
		if src, want := snap.DestinationRules[0].Source.Source, filepath.Join(filepath.Base(dir), "team", "routes.yml#2"); src != want {
			t.Errorf("source of b-dr = %q, want %q", src, want)
		}
	}
}

// A Kubernetes ConfigMap mounted as a volume is a hidden timestamped
// directory, a hidden "..data" link to it, and one visible link per key:
// each file must be read once, through its visible link.
func TestLoadConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2024_01_01_00_00_00.000000001")
	writeFile(t, filepath.Join(ts, "services.yaml"), serviceEntry("a", "a.example.com", "10.0.0.1"))
	for _, link := range [][2]string{
		{"..2024_01_01_00_00_00.000000001", filepath.Join(dir, "..data")},
		{filepath.Join("..data", "services.yaml"), filepath.Join(dir, "services.yaml")},
	} {
		if err := os.Symlink(link[0], link[1]); err != nil {
			t.Skipf("symlinks: %v", err)
		}
	}
	snap, problems := load(t, New(Config{Dir: dir}))
	logProblems(t, problems)
	if len(problems) > 0 {
		t.Errorf("problems: %v", problems)
	}
	if got, want := hostnames(snap), []string{"a.example.com"}; !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
}

// A file that stops parsing keeps serving its last good contents, and the
// error names the file, on every load until it is fixed.
func TestLoadSyntaxErrorKeepsLastGoodContents(t *testing.T) {
	dir := copyCanary(t)
	vsFile := filepath.Join(dir, "virtual-service.yaml")
	w := New(Config{Dir: dir})
	load(t, w)

	// An edit that changes the weights and breaks the YAML: the edit must
	// not be applied halfway, the old contents stay.
	writeFile(t, vsFile, strings.Replace(canaryVS(80, 20), "  hosts:\n", "  hosts:\n   - [my-app\n", 1))
	for range 2 { // the error is reported again while the file stays broken
		snap, problems := load(t, w)
		if got := canaryWeights(snap); !slices.Equal(got, []uint32{90, 10}) {
			t.Errorf("weights while the file is broken = %v, want the last good [90 10]", got)
		}
		if got, want := drNames(snap), []string{"default/my-app-dr"}; !slices.Equal(got, want) {
			t.Errorf("DestinationRules = %v, want %v (other files are unaffected)", got, want)
		}
		if len(snap.Services) != 1 || len(snap.Services[0].Endpoints) != 2 {
			t.Errorf("services = %v, want my-app with 2 endpoints (other files are unaffected)", hostnames(snap))
		}
		errs := errorProblems(problems)
		if len(errs) != 1 {
			t.Fatalf("error problems = %v, want exactly one about virtual-service.yaml", errs)
		}
		var se *mesh.SyntaxError
		if !errors.As(errs[0], &se) {
			t.Errorf("problem %v (%T) is not a *mesh.SyntaxError", errs[0], errs[0])
		}
		msg := errs[0].Error()
		if !strings.Contains(msg, "virtual-service.yaml") || !strings.Contains(msg, "last good") {
			t.Errorf("problem %q should name virtual-service.yaml and say the last good contents are served", msg)
		}
	}

	// Fixed: the fix is applied and the problem is gone.
	writeFile(t, vsFile, canaryVS(80, 20))
	snap, problems := load(t, w)
	if got := canaryWeights(snap); !slices.Equal(got, []uint32{80, 20}) {
		t.Errorf("weights after the fix = %v, want [80 20]", got)
	}
	if len(problems) > 0 {
		t.Errorf("problems after the fix: %v", problems)
	}
}

// A new file that does not parse contributes nothing, not even its valid
// documents, and the error names it.
func TestLoadNewFileWithSyntaxError(t *testing.T) {
	dir := copyCanary(t)
	w := New(Config{Dir: dir})
	before, _ := load(t, w)

	writeFile(t, filepath.Join(dir, "extra.yaml"),
		serviceEntry("extra", "extra.example.com", "10.0.0.9")+"---\nkind: ServiceEntry\nmetadata: {name: broken\n")
	snap, problems := load(t, w)
	if diff := cmp.Diff(before, snap); diff != "" {
		t.Errorf("a new broken file changed the snapshot (-before +after):\n%s", diff)
	}
	errs := errorProblems(problems)
	if len(errs) != 1 {
		t.Fatalf("error problems = %v, want exactly one about extra.yaml", errs)
	}
	var se *mesh.SyntaxError
	if !errors.As(errs[0], &se) {
		t.Errorf("problem %v (%T) is not a *mesh.SyntaxError", errs[0], errs[0])
	}
	if msg := errs[0].Error(); !strings.Contains(msg, "extra.yaml") || strings.Contains(msg, "last good") {
		t.Errorf("problem %q should name extra.yaml, and not claim last good contents it never had", msg)
	}
}

// A deleted file's objects go away, and nothing keeps them alive.
func TestLoadDeletedFile(t *testing.T) {
	dir := copyCanary(t)
	w := New(Config{Dir: dir})
	load(t, w)

	removeFile(t, filepath.Join(dir, "virtual-service.yaml"))
	snap, problems := load(t, w)
	if got := vsNames(snap); len(got) > 0 {
		t.Errorf("VirtualServices after deleting their file = %v, want none", got)
	}
	if errs := errorProblems(problems); len(errs) > 0 {
		t.Errorf("error problems: %v", errs)
	}

	removeFile(t, filepath.Join(dir, "workloads.yaml"))
	snap, _ = load(t, w)
	if len(snap.Workloads) != 0 {
		t.Errorf("workloads after deleting their file = %d, want 0", len(snap.Workloads))
	}
	if len(snap.Services) != 1 || len(snap.Services[0].Endpoints) != 0 {
		t.Errorf("my-app should remain, without endpoints: %v", hostnames(snap))
	}
}

// An object edited into an invalid state keeps being served in its last
// good version, with an error naming it; a fix is applied; an invalid
// object deleted from disk goes away for good.
func TestLoadInvalidObjectKeepsLastGoodVersion(t *testing.T) {
	dir := copyCanary(t)
	vsFile := filepath.Join(dir, "virtual-service.yaml")
	w := New(Config{Dir: dir})
	load(t, w)

	step := func(name string, content string, want []uint32, wantErr bool) {
		t.Helper()
		if content == "" {
			removeFile(t, vsFile)
		} else {
			writeFile(t, vsFile, content)
		}
		snap, problems := load(t, w)
		if got := canaryWeights(snap); !slices.Equal(got, want) {
			t.Errorf("%s: weights = %v, want %v", name, got, want)
		}
		errs := errorProblems(problems)
		if !wantErr {
			if len(errs) > 0 {
				t.Errorf("%s: error problems: %v", name, errs)
			}
			return
		}
		if p := problemContaining(errs, "VirtualService default/my-app-vs", "virtual-service.yaml", "weights sum to 90"); p == nil {
			t.Errorf("%s: no error naming VirtualService default/my-app-vs, its file and the weights, in %v", name, errs)
		}
		if want != nil && problemContaining(problems, "VirtualService default/my-app-vs", "last good") == nil {
			t.Errorf("%s: no problem saying my-app-vs is served in its last good version, in %v", name, problems)
		}
	}
	step("weights 70/20", canaryVS(70, 20), []uint32{90, 10}, true)
	step("the same again", canaryVS(70, 20), []uint32{90, 10}, true)
	step("fixed to 80/20", canaryVS(80, 20), []uint32{80, 20}, false)
	step("broken again", canaryVS(70, 20), []uint32{80, 20}, true) // the last good is now the fix
	step("file deleted", "", nil, false)
	step("re-created broken", canaryVS(70, 20), nil, true) // nothing left to fall back on
}

// The same, for an object deleted from a file that stays.
func TestLoadInvalidObjectRemovedFromItsFile(t *testing.T) {
	dir := copyCanary(t)
	vsFile := filepath.Join(dir, "virtual-service.yaml")
	other := serviceEntry("other", "other.example.com", "10.0.0.7")
	writeFile(t, vsFile, canaryVS(90, 10)+"---\n"+other)
	w := New(Config{Dir: dir})
	load(t, w)

	writeFile(t, vsFile, canaryVS(70, 20)+"---\n"+other)
	snap, _ := load(t, w)
	if got := canaryWeights(snap); !slices.Equal(got, []uint32{90, 10}) {
		t.Fatalf("weights = %v, want the last good [90 10]", got)
	}
	writeFile(t, vsFile, other)
	snap, problems := load(t, w)
	if got := vsNames(snap); len(got) > 0 {
		t.Errorf("VirtualServices after removing the invalid one = %v, want none", got)
	}
	if errs := errorProblems(problems); len(errs) > 0 {
		t.Errorf("error problems: %v", errs)
	}
	if !slices.Contains(hostnames(snap), "other.example.com") {
		t.Errorf("services = %v, want other.example.com still there", hostnames(snap))
	}
}

// An object that was never valid is left out, and reported.
func TestLoadInvalidFromTheStart(t *testing.T) {
	dir := copyCanary(t)
	writeFile(t, filepath.Join(dir, "virtual-service.yaml"), canaryVS(70, 20))
	snap, problems := load(t, New(Config{Dir: dir}))
	if got := vsNames(snap); len(got) > 0 {
		t.Errorf("VirtualServices = %v, want none", got)
	}
	if problemContaining(errorProblems(problems), "VirtualService default/my-app-vs", "weights sum to 90") == nil {
		t.Errorf("no error naming VirtualService default/my-app-vs in %v", problems)
	}
	if p := problemContaining(problems, "last good"); p != nil {
		t.Errorf("problem %q claims a last good version that never existed", p)
	}
	// The rest is served.
	if len(snap.Services) != 1 || len(snap.DestinationRules) != 1 {
		t.Errorf("services %v, DestinationRules %v: want my-app and my-app-dr", hostnames(snap), drNames(snap))
	}
}

// An object that no longer decodes (a misspelt field) keeps its last good
// version too, while the other objects of its file take their edits.
func TestLoadUndecodableObjectKeepsLastGoodVersion(t *testing.T) {
	dir := copyCanary(t)
	vsFile := filepath.Join(dir, "virtual-service.yaml")
	writeFile(t, vsFile, canaryVS(90, 10)+"---\n"+serviceEntry("other", "other.example.com", "10.0.0.7"))
	w := New(Config{Dir: dir})
	load(t, w)

	writeFile(t, vsFile, strings.Replace(canaryVS(80, 20), "weight: 20", "wieght: 20", 1)+
		"---\n"+serviceEntry("other", "other.example.com", "10.0.0.8"))
	snap, problems := load(t, w)
	if got := canaryWeights(snap); !slices.Equal(got, []uint32{90, 10}) {
		t.Errorf("weights = %v, want the last good [90 10]", got)
	}
	if problemContaining(errorProblems(problems), "VirtualService default/my-app-vs", "virtual-service.yaml#1", "wieght") == nil {
		t.Errorf("no error naming the object, its document and the field, in %v", problems)
	}
	var addr string
	for _, svc := range snap.Services {
		if svc.Hostname == "other.example.com" && len(svc.Endpoints) == 1 {
			addr = svc.Endpoints[0].Address
		}
	}
	if addr != "10.0.0.8" {
		t.Errorf("other.example.com endpoint = %q, want the edit 10.0.0.8", addr)
	}
}
