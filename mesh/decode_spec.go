package mesh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// decodeSpec decodes the JSON of an object's spec into msg, reporting every
// problem on r.
//
// protojson alone would do the decoding, but it stops at the first problem
// and names it by byte offset. So the JSON is first walked against msg's
// descriptor: every unknown field and wrongly typed value is reported with
// its full path ("spec.http[0].rout: unknown field; did you mean "route"?").
// The walk also rewrites durations written the way Istio accepts them
// ("30ms", "5m", Go's time.ParseDuration syntax) into the seconds protojson
// wants ("0.030s"). Only then does protojson decode the result.
func decodeSpec(raw json.RawMessage, msg proto.Message, r *report) {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		r.errorf("spec", "not valid JSON: %v", err)
		return
	}
	c := specChecker{r: r}
	v = c.message(v, msg.ProtoReflect().Descriptor(), "spec")
	if !r.ok() {
		return
	}
	normalized, err := json.Marshal(v)
	if err != nil {
		r.errorf("spec", "re-encoding: %v", err)
		return
	}
	if err := protojson.Unmarshal(normalized, msg); err != nil {
		r.errorf("spec", "%s", protojsonMessage(err))
	}
}

// protojsonMessage strips the "proto:" prefix from a protojson error.
// (protojson varies the space after it on purpose, so that nobody compares
// its messages; trim whatever space there is.)
func protojsonMessage(err error) string {
	s := strings.TrimPrefix(err.Error(), "proto:")
	return strings.TrimLeft(s, " \u00a0")
}

// specChecker walks decoded JSON against a protobuf descriptor.
type specChecker struct {
	r *report
}

// message checks a JSON object against the message md and returns it with
// null fields removed and durations normalized.
func (c specChecker) message(v any, md protoreflect.MessageDescriptor, path fieldPath) any {
	obj, ok := v.(map[string]any)
	if !ok {
		c.r.errorf(path, "want a mapping (key: value), got %s", describe(v))
		return v
	}
	seen := map[protoreflect.FullName]string{} // field -> key that set it
	for _, k := range sortedKeys(obj) {
		fp := path.field(k)
		fd := lookupField(md, k)
		switch {
		case fd == nil:
			c.r.errorf(fp, "unknown field%s", fieldHint(md, k))
		case obj[k] == nil:
			delete(obj, k) // "key:" with no value, as YAML allows: not set
		case seen[fd.FullName()] != "":
			c.r.errorf(fp, "same field as %q; set it once", seen[fd.FullName()])
		case c.oneofClash(md, fd, obj, path):
		default:
			seen[fd.FullName()] = k
			obj[k] = c.field(obj[k], fd, fp)
		}
	}
	return obj
}

// oneofClash reports (once, on the lowest key) two members of the same
// oneof set together, such as exact and prefix in one StringMatch.
func (c specChecker) oneofClash(md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, obj map[string]any, path fieldPath) bool {
	od := fd.ContainingOneof()
	if od == nil || od.IsSynthetic() {
		return false
	}
	var set []string
	for _, k := range sortedKeys(obj) {
		if other := lookupField(md, k); other != nil && other.ContainingOneof() == od && obj[k] != nil {
			set = append(set, k)
		}
	}
	if len(set) < 2 {
		return false
	}
	if lookupField(md, set[0]) == fd {
		c.r.errorf(path, "set only one of %s (found %s)", oneofNames(od), strings.Join(set, " and "))
	}
	return true
}

// field checks the value of one field: a list, a map or a single value.
func (c specChecker) field(v any, fd protoreflect.FieldDescriptor, path fieldPath) any {
	switch {
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			c.r.errorf(path, "want a list, got %s", describe(v))
			return v
		}
		for i := range list {
			list[i] = c.singular(list[i], fd, path.index(i))
		}
		return list
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			c.r.errorf(path, "want a mapping (key: value), got %s", describe(v))
			return v
		}
		for _, k := range sortedKeys(obj) {
			c.mapKey(k, fd.MapKey(), path.key(k))
			obj[k] = c.singular(obj[k], fd.MapValue(), path.key(k))
		}
		return obj
	}
	return c.singular(v, fd, path)
}

// mapKey checks a key of a map whose keys are numbers (JSON writes every
// key as a string): portLevelMtls: {8080: ...}.
func (c specChecker) mapKey(k string, fd protoreflect.FieldDescriptor, path fieldPath) {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BoolKind:
		return
	}
	c.scalar(k, fd, path)
}

// wrapperTypes are the well-known messages that JSON writes as a bare value.
var wrapperTypes = map[protoreflect.FullName]bool{
	"google.protobuf.BoolValue": true, "google.protobuf.StringValue": true,
	"google.protobuf.BytesValue": true, "google.protobuf.DoubleValue": true,
	"google.protobuf.FloatValue": true, "google.protobuf.Int32Value": true,
	"google.protobuf.Int64Value": true, "google.protobuf.UInt32Value": true,
	"google.protobuf.UInt64Value": true,
}

// singular checks one value of the type of fd.
func (c specChecker) singular(v any, fd protoreflect.FieldDescriptor, path fieldPath) any {
	md := fd.Message()
	switch {
	case md == nil:
		return c.scalar(v, fd, path)
	case md.FullName() == "google.protobuf.Duration":
		return c.duration(v, path)
	case wrapperTypes[md.FullName()]:
		return c.scalar(v, md.Fields().ByName("value"), path)
	case md.ParentFile().Package() == "google.protobuf":
		return v // other well-known types: left to protojson
	}
	return c.message(v, md, path)
}

// scalar checks a value of a scalar field (number, string, bool, enum).
func (c specChecker) scalar(v any, fd protoreflect.FieldDescriptor, path fieldPath) any {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			c.r.errorf(path, "want true or false, got %s", describe(v))
		}
	case protoreflect.StringKind, protoreflect.BytesKind:
		if _, ok := v.(string); !ok {
			c.r.errorf(path, "want a string, got %s%s", describe(v), quoteHint(v))
		}
	case protoreflect.EnumKind:
		c.enum(v, fd.Enum(), path)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		c.integer(v, path, math.MinInt32, math.MaxInt32)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		c.integer(v, path, 0, math.MaxUint32)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		c.integer(v, path, math.MinInt64, math.MaxInt64)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		c.integer(v, path, 0, math.MaxInt64) // larger values are never meaningful here
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		if _, err := strconv.ParseFloat(numberText(v), 64); err != nil {
			c.r.errorf(path, "want a number, got %s", describe(v))
		}
	}
	return v
}

// integer checks that v is a whole number (JSON number or numeric string,
// as protojson accepts) between lo and hi.
func (c specChecker) integer(v any, path fieldPath, lo, hi int64) {
	n, err := strconv.ParseInt(numberText(v), 10, 64)
	switch {
	case err != nil:
		c.r.errorf(path, "want a whole number, got %s", describe(v))
	case n < lo && lo == 0:
		c.r.errorf(path, "must not be negative, got %d", n)
	case n < lo || n > hi:
		c.r.errorf(path, "want a number between %d and %d, got %d", lo, hi, n)
	}
}

// enum checks that v names a value of ed (or is a number, which protojson
// also accepts).
func (c specChecker) enum(v any, ed protoreflect.EnumDescriptor, path fieldPath) {
	if _, ok := v.(json.Number); ok {
		return
	}
	name, ok := v.(string)
	if !ok {
		c.r.errorf(path, "want one of %s, got %s", strings.Join(enumNames(ed), ", "), describe(v))
		return
	}
	if ed.Values().ByName(protoreflect.Name(name)) == nil {
		c.r.errorf(path, "unknown value %q, want one of %s%s",
			name, strings.Join(enumNames(ed), ", "), didYouMean(name, enumNames(ed)))
	}
}

// duration checks a duration written as Istio accepts it ("5s", "100ms",
// "1m30s") and returns it in protojson's format ("90s").
func (c specChecker) duration(v any, path fieldPath) any {
	s, ok := v.(string)
	if !ok {
		c.r.errorf(path, "want a duration such as \"5s\" or \"100ms\", got %s", describe(v))
		return v
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		c.r.errorf(path, "want a duration such as \"5s\" or \"100ms\", got %q", s)
		return v
	}
	return protoDuration(d)
}

// protoDuration renders d the way protojson reads durations: seconds with
// up to nine decimals and an "s", "-1.500s".
func protoDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	secs, nanos := int64(d/time.Second), int64(d%time.Second)
	if nanos == 0 {
		return fmt.Sprintf("%s%ds", sign, secs)
	}
	return fmt.Sprintf("%s%d.%09ds", sign, secs, nanos)
}

// lookupField finds the field a JSON key names, by its JSON (camelCase) or
// proto (snake_case) name, as protojson does.
func lookupField(md protoreflect.MessageDescriptor, key string) protoreflect.FieldDescriptor {
	if fd := md.Fields().ByJSONName(key); fd != nil {
		return fd
	}
	return md.Fields().ByTextName(key)
}

// fieldHint helps with an unknown key: a likely intended field, or the list
// of the fields that are allowed here when it is short.
func fieldHint(md protoreflect.MessageDescriptor, key string) string {
	names := make([]string, 0, md.Fields().Len())
	for i := 0; i < md.Fields().Len(); i++ {
		names = append(names, md.Fields().Get(i).JSONName())
	}
	if hint := didYouMean(key, names); hint != "" {
		return hint
	}
	if len(names) <= 8 {
		slices.Sort(names)
		return " (fields here: " + strings.Join(names, ", ") + ")"
	}
	return ""
}

// oneofNames lists the members of a oneof by JSON name: "exact, prefix, regex".
func oneofNames(od protoreflect.OneofDescriptor) string {
	names := make([]string, od.Fields().Len())
	for i := range names {
		names[i] = od.Fields().Get(i).JSONName()
	}
	return strings.Join(names, ", ")
}

// enumNames lists the names of the values of an enum, in declaration order.
func enumNames(ed protoreflect.EnumDescriptor) []string {
	names := make([]string, ed.Values().Len())
	for i := range names {
		names[i] = string(ed.Values().Get(i).Name())
	}
	return names
}

// numberText returns the text of a JSON number or string, "" otherwise.
func numberText(v any) string {
	switch v := v.(type) {
	case json.Number:
		return v.String()
	case string:
		return v
	}
	return ""
}

// describe renders a JSON value for a message: `string "x"`, "number 80",
// "true", "null", "a list", "a mapping".
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return "number " + v.String()
	case string:
		return "string " + strconv.Quote(v)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// quoteHint suggests quoting a number or boolean where YAML needs a string
// (label values such as `version: 1` are the usual case).
func quoteHint(v any) string {
	switch v.(type) {
	case json.Number, bool:
		return fmt.Sprintf(" (quote it in YAML: \"%v\")", v)
	}
	return ""
}

// sortedKeys returns the keys of a JSON object in order, so that
// diagnostics come out the same every time.
func sortedKeys(obj map[string]any) []string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
