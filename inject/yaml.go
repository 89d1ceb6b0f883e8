package inject

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// templatePaths says, for each kind that holds pods, where the pod (or pod
// template: metadata and spec) is in the object. Kinds are matched with
// their API group.
var templatePaths = map[string][]string{
	"/Pod":                   nil,
	"/ReplicationController": {"spec", "template"},
	"apps/Deployment":        {"spec", "template"},
	"apps/StatefulSet":       {"spec", "template"},
	"apps/DaemonSet":         {"spec", "template"},
	"apps/ReplicaSet":        {"spec", "template"},
	"batch/Job":              {"spec", "template"},
	"batch/CronJob":          {"spec", "jobTemplate", "spec", "template"},
}

// InjectYAML injects the sidecar into every pod template of a multi-document
// YAML file (and of List objects in it), as `minimesh inject` does.
// Documents without pods, and pods left alone (see Patch), are copied as
// they are; the others are rewritten with sorted keys, and their comments
// are lost.
func InjectYAML(c Config, in []byte) ([]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(in)))
	var out [][]byte
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		injected, err := injectDocument(c, doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, injected)
	}
	return joinDocuments(out), nil
}

// joinDocuments puts documents back into one YAML stream.
func joinDocuments(docs [][]byte) []byte {
	var b bytes.Buffer
	for i, doc := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(doc)
		if len(doc) > 0 && doc[len(doc)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// injectDocument injects one YAML document, returning it unchanged when it
// holds no pod to inject.
func injectDocument(c Config, doc []byte) ([]byte, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	var obj any
	if err := decodeJSON(j, &obj); err != nil {
		return nil, err
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return doc, nil // empty, comments only, or not an object
	}
	changed, err := injectObject(c, m)
	if err != nil || !changed {
		return doc, err
	}
	j, err = json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(j)
}

// injectObject injects the pod template of obj, or of each item of a List,
// in place, and reports whether anything changed.
func injectObject(c Config, obj map[string]any) (bool, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	name := objectName(obj)
	if strings.HasSuffix(kind, "List") {
		items, _ := obj["items"].([]any)
		changed := false
		for i, item := range items {
			m, ok := item.(map[string]any)
			if !ok {
				continue
			}
			itemChanged, err := injectObject(c, m)
			if err != nil {
				return false, fmt.Errorf("%s item %d: %w", kind, i, err)
			}
			changed = changed || itemChanged
		}
		return changed, nil
	}
	path, ok := templatePaths[apiGroup(apiVersion)+"/"+kind]
	if !ok {
		return false, nil
	}
	parent, key, template, err := findTemplate(obj, path)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", kind, name, err)
	}
	injected, err := injectTemplate(c, template)
	if err != nil || injected == nil {
		if err != nil {
			err = fmt.Errorf("%s %s: %w", kind, name, err)
		}
		return false, err
	}
	if parent == nil {
		// The object is a Pod: replace its contents.
		clear(obj)
		for k, v := range injected {
			obj[k] = v
		}
	} else {
		parent[key] = injected
	}
	return true, nil
}

// findTemplate walks path from obj to the pod template. It returns the map
// holding the template and the template's key there (nil and "" when the
// object is the pod itself).
func findTemplate(obj map[string]any, path []string) (parent map[string]any, key string, template map[string]any, err error) {
	template = obj
	for i, k := range path {
		next, ok := template[k].(map[string]any)
		if !ok {
			return nil, "", nil, fmt.Errorf("%s: missing or not an object", strings.Join(path[:i+1], "."))
		}
		parent, key, template = template, k, next
	}
	return parent, key, template, nil
}

// injectTemplate returns the injected copy of a pod or pod template (a map
// with metadata and spec), or nil when it is left alone.
func injectTemplate(c Config, template map[string]any) (map[string]any, error) {
	if _, ok := template["spec"].(map[string]any); !ok {
		return nil, errors.New("pod spec: missing or not an object")
	}
	if _, ok := template["metadata"].(map[string]any); !ok {
		template["metadata"] = map[string]any{} // so that the patch can add labels
	}
	j, err := json.Marshal(template)
	if err != nil {
		return nil, err
	}
	var pod corev1.PodTemplateSpec
	if err := json.Unmarshal(j, &pod); err != nil {
		return nil, fmt.Errorf("pod template: %w", err)
	}
	ops, skip, err := Patch(c, &pod.ObjectMeta, &pod.Spec)
	if err != nil || skip != "" {
		return nil, err
	}
	patched, err := applyPatch(j, ops)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := decodeJSON(patched, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// applyPatch applies JSON Patch operations to a JSON document, as the API
// server does with the webhook's patch.
func applyPatch(doc []byte, ops []Operation) ([]byte, error) {
	j, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatch.DecodePatch(j)
	if err != nil {
		return nil, fmt.Errorf("sidecar patch: %w", err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		return nil, fmt.Errorf("applying the sidecar patch: %w", err)
	}
	return out, nil
}

// decodeJSON decodes keeping numbers as written (no float64 rounding).
func decodeJSON(j []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	return d.Decode(v)
}

// apiGroup is the group of an apiVersion ("apps/v1" -> "apps", "v1" -> "").
func apiGroup(apiVersion string) string {
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		return ""
	}
	return group
}

// objectName is "namespace/name" or "name" for error messages.
func objectName(obj map[string]any) string {
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if ns, _ := meta["namespace"].(string); ns != "" {
		return ns + "/" + name
	}
	return name
}
