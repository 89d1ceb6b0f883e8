package mesh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	"sigs.k8s.io/yaml"
)

// Object is one decoded Istio object.
type Object struct {
	// Ref names the object: Kind ("ServiceEntry", "WorkloadEntry",
	// "VirtualService", "DestinationRule", "PeerAuthentication"; or, from
	// watcher/kube, "Service" with a ServiceEntry spec and "Pod" with a
	// WorkloadEntry spec), Namespace, Name and Source.
	Ref Ref
	// Spec is the object's spec: *v1alpha3.ServiceEntry,
	// *v1alpha3.WorkloadEntry, *v1alpha3.VirtualService or
	// *v1alpha3.DestinationRule from istio.io/api/networking/v1alpha3, or
	// *v1beta1.PeerAuthentication from istio.io/api/security/v1beta1 (for
	// security.istio.io/v1 too: istio.io/api/security/v1 aliases it).
	Spec proto.Message
}

// kinds maps each kind minimesh reads to a constructor of its spec.
var kinds = map[string]func() proto.Message{
	"ServiceEntry":       func() proto.Message { return &networking.ServiceEntry{} },
	"WorkloadEntry":      func() proto.Message { return &networking.WorkloadEntry{} },
	"VirtualService":     func() proto.Message { return &networking.VirtualService{} },
	"DestinationRule":    func() proto.Message { return &networking.DestinationRule{} },
	"PeerAuthentication": func() proto.Message { return &security.PeerAuthentication{} },
	"Sidecar":            func() proto.Message { return &networking.Sidecar{} },
}

// apiVersions are the versions of networking.istio.io that minimesh reads.
// Their schemas are identical for the fields minimesh uses, so all of them
// decode into the v1alpha3 Go types, as they do in Istio itself.
var apiVersions = map[string]bool{
	"networking.istio.io/v1":       true,
	"networking.istio.io/v1beta1":  true,
	"networking.istio.io/v1alpha3": true,
}

// securityAPIVersions are the versions of security.istio.io that minimesh
// reads. Both decode into the v1beta1 Go types (v1 aliases them).
var securityAPIVersions = map[string]bool{
	"security.istio.io/v1":      true,
	"security.istio.io/v1beta1": true,
}

// kindAPIVersions returns the API versions a kind is read in, and how to
// name them in a message.
func kindAPIVersions(kind string) (map[string]bool, string) {
	if kind == "PeerAuthentication" {
		return securityAPIVersions, "security.istio.io/v1 or v1beta1"
	}
	return apiVersions, "networking.istio.io/v1, v1beta1 or v1alpha3"
}

// SyntaxError is a YAML file that cannot be parsed. The caller keeps the
// file's last good contents.
type SyntaxError struct {
	Source  string // the file
	Line    int    // line in the file, 1-based; 0 when the parser did not say
	DocLine int    // first line of the document that failed
	Message string // the parser's message, without its "yaml: line N:" prefix
}

// Error renders "canary.yaml:7: mapping values are not allowed in this
// context", or names the document when the line is unknown.
func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Source, e.Line, e.Message)
	}
	return fmt.Sprintf("%s: document starting at line %d: %s", e.Source, e.DocLine, e.Message)
}

// Decode splits one YAML file into documents and decodes the Istio kinds
// minimesh knows. source is the file path used in messages; objects without
// metadata.namespace get defaultNamespace.
//
// A YAML syntax error anywhere in the file returns a *SyntaxError and
// nothing else. Problems with one document are Diagnostics: other kinds are
// skipped with an info, invalid objects are dropped with an error, and
// fields minimesh does not implement get a warning while the object is kept.
// Empty documents are skipped silently.
func Decode(source string, data []byte, defaultNamespace string) ([]Object, []Diagnostic, error) {
	docs, err := parseDocuments(source, data)
	if err != nil {
		return nil, nil, err
	}
	var objs []Object
	var diags []Diagnostic
	for _, doc := range docs {
		src := source
		if len(docs) > 1 {
			src = source + "#" + strconv.Itoa(doc.index)
		}
		if obj, ok := decodeDocument(src, doc.json, defaultNamespace, &diags); ok {
			objs = append(objs, obj)
		}
	}
	return objs, diags, nil
}

// document is one non-empty YAML document of a file, converted to JSON.
type document struct {
	index int // 1-based, counting non-empty documents only
	json  []byte
}

// chunk is the text of one YAML document and the file line it starts on.
type chunk struct {
	line int
	text []byte
}

// parseDocuments converts every document of a file to JSON, dropping empty
// ones. The first syntax error fails the whole file.
func parseDocuments(source string, data []byte) ([]document, error) {
	var docs []document
	for _, c := range splitDocuments(data) {
		j, err := yaml.YAMLToJSONStrict(c.text)
		if err != nil {
			return nil, syntaxError(source, c.line, err)
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue
		}
		docs = append(docs, document{index: len(docs) + 1, json: j})
	}
	return docs, nil
}

// splitDocuments cuts a file into documents at the lines that are exactly
// "---" (trailing spaces and a comment allowed), remembering where each
// document starts so that errors can give file line numbers.
func splitDocuments(data []byte) []chunk {
	var chunks []chunk
	cur := chunk{line: 1}
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		if isDocumentSeparator(line) {
			chunks = append(chunks, cur)
			cur = chunk{line: i + 2}
			continue
		}
		cur.text = append(cur.text, line...)
	}
	return append(chunks, cur)
}

// isDocumentSeparator reports whether a line is "---", perhaps followed by
// spaces or a comment.
func isDocumentSeparator(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// yamlLine finds the line number in a YAML parser message.
var yamlLine = regexp.MustCompile(`line (\d+):? ?`)

// syntaxError turns a parser error about a document starting at docLine
// into a *SyntaxError with a line number counted from the top of the file.
func syntaxError(source string, docLine int, err error) *SyntaxError {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.Join(strings.Fields(msg), " ")
	e := &SyntaxError{Source: source, DocLine: docLine, Message: msg}
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		n, _ := strconv.Atoi(msg[m[2]:m[3]])
		e.Line = docLine + n - 1
		e.Message = msg[:m[0]] + msg[m[1]:]
	}
	return e
}

// decodeDocument decodes one document. It returns false when the document
// is not an object minimesh uses; the reason is in diags.
func decodeDocument(source string, data []byte, defaultNamespace string, diags *[]Diagnostic) (Object, bool) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		*diags = append(*diags, Diagnostic{Severity: SeverityError, Source: source,
			Message: "document is not a mapping (key: value), ignored"})
		return Object{}, false
	}
	r := newReport(Ref{Source: source}, diags)
	apiVersion := stringField(top, "apiVersion", "", r)
	r.ref.Kind = stringField(top, "kind", "", r)
	meta := objectField(top, "metadata", r)
	r.ref.Name = stringField(meta, "name", "metadata", r)
	r.ref.Namespace = stringField(meta, "namespace", "metadata", r)
	if r.ref.Namespace == "" {
		r.ref.Namespace = defaultNamespace
	}
	if !r.ok() {
		return Object{}, false
	}
	if !isIstioObject(apiVersion, r) {
		return Object{}, false
	}
	if r.ref.Name == "" {
		r.errorf("metadata.name", "missing: every object needs a name")
		return Object{}, false
	}
	spec := kinds[r.ref.Kind]()
	decodeSpec(top["spec"], spec, r)
	if !r.ok() {
		return Object{}, false
	}
	obj := Object{Ref: r.ref, Spec: spec}
	*diags = append(*diags, UnsupportedFields(obj)...)
	return obj, true
}

// isIstioObject reports whether apiVersion and the kind in r name an object
// minimesh reads, and reports why not otherwise.
func isIstioObject(apiVersion string, r *report) bool {
	_, known := kinds[r.ref.Kind]
	versions, want := kindAPIVersions(r.ref.Kind)
	switch {
	case r.ref.Kind == "":
		r.warnf("kind", "missing: not a Kubernetes object, ignored")
	case !known:
		r.infof("", "kind %s ignored", r.ref.Kind)
	case !versions[apiVersion]:
		r.warnf("apiVersion", "%q is not an API version minimesh reads "+
			"(want %s); object ignored", apiVersion, want)
	default:
		return true
	}
	return false
}

// stringField reads an optional string field of a JSON object; parent is
// the path of obj, for messages.
func stringField(obj map[string]json.RawMessage, key string, parent fieldPath, r *report) string {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		r.errorf(parent.field(key), "want a string, got %s", raw)
	}
	return s
}

// objectField reads an optional mapping field of a JSON object.
func objectField(obj map[string]json.RawMessage, key string, r *report) map[string]json.RawMessage {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		r.errorf(fieldPath(key), "want a mapping (key: value)")
	}
	return m
}
