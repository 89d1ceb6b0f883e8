// Package file is the file source: it watches a directory (and its
// sub-directories) of Istio YAML and emits a complete mesh.Snapshot each
// time the files change.
//
// A file with a syntax error keeps its last good contents; an invalid object
// is left out and reported, and everything else keeps being served. Bursts
// of edits are debounced (a short hold-off, restarted by each event, and a
// ceiling on the total delay), and updates that change nothing are dropped.
//
// file imports mesh only: it knows nothing of Envoy.
package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/minimesh/minimesh/mesh"
	"github.com/minimesh/minimesh/watcher"
)

// Config configures a Watcher.
type Config struct {
	Dir              string
	DefaultNamespace string        // for objects without metadata.namespace; "default" if empty
	DomainSuffix     string        // "cluster.local" if empty
	RootNamespace    string        // mesh-wide policies live here; "istio-system" if empty
	HoldOff          time.Duration // quiet time after the last event before rebuilding (default 20 ms)
	MaxDelay         time.Duration // ceiling from the first event to the rebuild (default 100 ms)
	Log              *zap.Logger
}

// Watcher reads and watches one directory.
type Watcher struct {
	cfg   Config
	files map[string]*fileState // by path
	last  *mesh.Snapshot
	// problems logs what a reload finds, each problem once.
	problems *watcher.ProblemLog
	// lastGood is the last version of each object that was served.
	lastGood mesh.LastGood
}

// fileState is the last good decoding of one file.
type fileState struct {
	data    []byte
	objects []mesh.Object
	diags   []mesh.Diagnostic // found while decoding (warnings, rejected objects)
	// syntaxErr is set while the file on disk does not parse; objects are
	// then the last good ones.
	syntaxErr error
}

// New returns a watcher; call Load, then Run.
func New(cfg Config) *Watcher {
	if cfg.DefaultNamespace == "" {
		cfg.DefaultNamespace = "default"
	}
	if cfg.HoldOff == 0 {
		cfg.HoldOff = watcher.DefaultHoldOff
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = watcher.DefaultMaxDelay
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Watcher{cfg: cfg, files: map[string]*fileState{},
		problems: watcher.NewProblemLog(cfg.Log, zapcore.ErrorLevel)}
}

// Load reads the whole directory and returns the mesh it describes, with
// every problem currently found in it. It fails only if the directory
// cannot be read.
func (w *Watcher) Load() (*mesh.Snapshot, []error, error) {
	paths, err := w.list()
	if err != nil {
		return nil, nil, err
	}
	var problems []error
	seen := map[string]bool{}
	for _, p := range paths {
		seen[p] = true
		if err := w.read(p); err != nil {
			problems = append(problems, err)
		}
	}
	for p := range w.files {
		if !seen[p] {
			delete(w.files, p) // deleted: its objects go away
		}
	}
	var objs []mesh.Object
	rejected := map[string]bool{} // objects an error left out, by key
	for _, p := range sortedKeys(w.files) {
		objs = append(objs, w.files[p].objects...)
		for _, d := range w.files[p].diags {
			problems = append(problems, d)
			if d.Severity == mesh.SeverityError && d.Object != "" {
				rejected[d.Object] = true
			}
		}
	}
	snap, diags, notes := w.buildKeepingLastGood(objs, rejected)
	for _, d := range diags {
		problems = append(problems, d)
	}
	return snap, append(problems, notes...), nil
}

// list returns the YAML files under the directory, sorted. Hidden files and
// directories (editor swap files, Kubernetes ConfigMap "..data" links) are
// skipped.
func (w *Watcher) list() ([]string, error) {
	var out []string
	err := filepath.WalkDir(w.cfg.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == w.cfg.Dir {
				return err
			}
			return nil // vanished while walking
		}
		name := d.Name()
		if path != w.cfg.Dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && isYAML(name) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("config dir %s: %w", w.cfg.Dir, err)
	}
	sort.Strings(out)
	return out, nil
}

func isYAML(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// read decodes one file if its contents changed. On a syntax error the file
// keeps its previous objects and the error is returned.
func (w *Watcher) read(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	if st := w.files[path]; st != nil && bytes.Equal(st.data, data) {
		return st.syntaxErr
	}
	objs, diags, err := mesh.Decode(w.relative(path), data, w.cfg.DefaultNamespace)
	if err != nil {
		st := w.files[path]
		if st == nil {
			st = &fileState{}
			w.files[path] = st
		} else if st.objects != nil {
			err = fmt.Errorf("%w (serving the last good contents of this file)", err)
		}
		st.data, st.syntaxErr = data, err
		return err
	}
	w.files[path] = &fileState{data: data, objects: objs, diags: diags}
	return nil
}

// relative names a file in messages by its path under the directory.
func (w *Watcher) relative(path string) string {
	if rel, err := filepath.Rel(w.cfg.Dir, path); err == nil {
		return filepath.Join(filepath.Base(w.cfg.Dir), rel)
	}
	return path
}

func sortedKeys(m map[string]*fileState) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Run watches the directory until ctx ends. It loads it at once, then
// after every debounced burst of changes, and calls publish with each
// snapshot that differs from the previous one. Problems are logged once
// each, when they first appear.
func (w *Watcher) Run(ctx context.Context, publish func(*mesh.Snapshot)) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", w.cfg.Dir, err)
	}
	defer fw.Close()
	if err := w.watchTree(fw); err != nil {
		return err
	}
	w.reload(publish)

	debounce := watcher.NewDebounce(w.cfg.HoldOff, w.cfg.MaxDelay)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				// A new sub-directory must be watched too.
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = w.watchTree(fw)
				}
			}
			debounce.Changed()
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.cfg.Log.Warn("file watch error; reloading everything", zap.Error(err))
			debounce.Changed()
		case <-debounce.C():
			debounce.Fired()
			w.reload(publish)
		}
	}
}

// watchTree adds a watch on the directory and each sub-directory.
func (w *Watcher) watchTree(fw *fsnotify.Watcher) error {
	return filepath.WalkDir(w.cfg.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == w.cfg.Dir {
				return fmt.Errorf("config dir %s: %w", w.cfg.Dir, err)
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if path != w.cfg.Dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if err := fw.Add(path); err != nil {
			return fmt.Errorf("watching %s: %w", path, err)
		}
		return nil
	})
}

// reload loads the directory, logs new problems, and publishes the
// snapshot if it changed.
func (w *Watcher) reload(publish func(*mesh.Snapshot)) {
	start := time.Now()
	snap, problems, err := w.Load()
	if err != nil {
		w.cfg.Log.Error("cannot read config dir; serving the last good configuration", zap.Error(err))
		return
	}
	w.problems.Report(problems)
	if w.last != nil && reflect.DeepEqual(w.last, snap) {
		w.cfg.Log.Debug("config dir reloaded, nothing changed", zap.Duration("took", time.Since(start)))
		return
	}
	w.cfg.Log.Debug("config dir reloaded", zap.Duration("took", time.Since(start)))
	w.last = snap
	publish(snap)
}
