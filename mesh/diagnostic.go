package mesh

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Severity says how serious a Diagnostic is.
type Severity int

const (
	// SeverityInfo: nothing is wrong, but something was skipped on purpose
	// (a Kubernetes kind minimesh does not read, for example).
	SeverityInfo Severity = iota
	// SeverityWarning: the object is used, but part of it is ignored or
	// probably not what its author meant.
	SeverityWarning
	// SeverityError: the object (or, where documented, one host of it) is
	// left out of the Snapshot.
	SeverityError
)

// String returns "info", "warning" or "error".
func (s Severity) String() string {
	switch s {
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityError:
		return "error"
	}
	return "severity(" + strconv.Itoa(int(s)) + ")"
}

// Diagnostic is a problem found in the input, precise enough for a person to
// find and fix it: where it was read, which object, which field, and what is
// wrong.
type Diagnostic struct {
	Severity Severity
	// Source is the file (with "#<doc index>" when the file has several
	// documents), or "kubernetes".
	Source string
	// Object is "VirtualService default/my-app-vs" ("" if unknown).
	Object string
	// Field is the path of the offending field,
	// "spec.http[0].route[1].destination.subset" ("" if none).
	Field   string
	Message string
}

// Error renders the diagnostic as one line, leaving out the parts that are
// empty:
//
//	canary/vs.yaml#1: VirtualService default/my-app-vs: spec.http[0].route: weights sum to 90, want 100
func (d Diagnostic) Error() string {
	parts := make([]string, 0, 4)
	for _, p := range []string{d.Source, d.Object, d.Field, d.Message} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ": ")
}

// objectName renders a reference the way diagnostics name objects:
// "VirtualService default/my-app-vs", or just "VirtualService" while the
// name is unknown.
func objectName(ref Ref) string {
	if ref.Name == "" {
		return ref.Kind
	}
	return strings.TrimSpace(ref.Kind + " " + ref.Namespace + "/" + ref.Name)
}

// report collects the diagnostics about one object and remembers whether any
// of them was an error, which is what decides if the object is kept.
type report struct {
	ref    Ref
	diags  *[]Diagnostic
	errors int
}

// newReport starts a report about ref that appends to diags.
func newReport(ref Ref, diags *[]Diagnostic) *report {
	return &report{ref: ref, diags: diags}
}

func (r *report) add(sev Severity, field fieldPath, format string, args ...any) {
	if sev == SeverityError {
		r.errors++
	}
	*r.diags = append(*r.diags, Diagnostic{
		Severity: sev,
		Source:   r.ref.Source,
		Object:   objectName(r.ref),
		Field:    string(field),
		Message:  fmt.Sprintf(format, args...),
	})
}

// errorf reports a problem that makes the object unusable.
func (r *report) errorf(field fieldPath, format string, args ...any) {
	r.add(SeverityError, field, format, args...)
}

// warnf reports a problem that leaves the object usable.
func (r *report) warnf(field fieldPath, format string, args ...any) {
	r.add(SeverityWarning, field, format, args...)
}

// infof reports something skipped on purpose.
func (r *report) infof(field fieldPath, format string, args ...any) {
	r.add(SeverityInfo, field, format, args...)
}

// ok reports whether no error has been reported so far.
func (r *report) ok() bool { return r.errors == 0 }

// fieldPath is the path of a field in an object, as people write it:
// "spec.http[0].match[1].headers.x-user".
type fieldPath string

// field returns the path of a named field below p.
func (p fieldPath) field(name string) fieldPath {
	if p == "" {
		return fieldPath(name)
	}
	return p + "." + fieldPath(name)
}

// index returns the path of the i-th element of the list at p.
func (p fieldPath) index(i int) fieldPath {
	return p + fieldPath("["+strconv.Itoa(i)+"]")
}

// plainKey matches map keys that read well after a dot.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// key returns the path of the value under key k of the map at p: ".k" for
// simple keys, `["k"]` for keys with dots, slashes or spaces in them
// (label names such as "app.kubernetes.io/name").
func (p fieldPath) key(k string) fieldPath {
	if plainKey.MatchString(k) {
		return p.field(k)
	}
	return p + fieldPath("["+strconv.Quote(k)+"]")
}
