package main

import (
	"encoding/json"
	"slices"

	"google.golang.org/protobuf/reflect/protoreflect"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// maxDepth bounds how many messages deep a schema goes. The Istio kinds
// stop well before (about six levels); a deeper message is kept as an
// opaque object so a recursive or very deep type cannot blow up the file.
const maxDepth = 12

// The schema of a message follows protojson, the JSON mapping that
// istio.io/api (and so minimesh's decoder) reads:
//
//   - a field is named by its JSON name (lowerCamelCase: sourceLabels);
//   - 32-bit integers are JSON numbers, 64-bit integers may be numbers or
//     strings ("1024"), floats are numbers, bytes are base64 strings;
//   - an enum is the name of one of its values;
//   - a repeated field is an array, a map an object with free keys;
//   - the well-known types have their own JSON forms (wellKnownSchema).
//
// The members of a oneof are plain optional fields: a structural schema
// cannot say "at most one of", and minimesh's decoder reports two members
// set together, naming the field.

// messageSchema is the schema of a message. parents are the messages that
// contain it, outermost first: a message that contains itself, or one nested
// deeper than maxDepth, becomes an object whose contents are kept unchecked.
func messageSchema(md protoreflect.MessageDescriptor, parents []protoreflect.FullName) apiextv1.JSONSchemaProps {
	if s, ok := wellKnownSchema(md); ok {
		return s
	}
	if len(parents) >= maxDepth || slices.Contains(parents, md.FullName()) {
		return opaqueObject()
	}
	parents = append(slices.Clip(parents), md.FullName())
	props := map[string]apiextv1.JSONSchemaProps{}
	fields := md.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		props[f.JSONName()] = fieldSchema(f, parents)
	}
	return apiextv1.JSONSchemaProps{Type: "object", Properties: props}
}

// fieldSchema is the schema of one field: an array of its values if it is
// repeated, an object if it is a map, else the value itself.
func fieldSchema(f protoreflect.FieldDescriptor, parents []protoreflect.FullName) apiextv1.JSONSchemaProps {
	switch {
	case f.IsMap():
		value := valueSchema(f.MapValue(), parents)
		return apiextv1.JSONSchemaProps{
			Type:                 "object",
			AdditionalProperties: &apiextv1.JSONSchemaPropsOrBool{Allows: true, Schema: &value},
		}
	case f.IsList():
		item := valueSchema(f, parents)
		return apiextv1.JSONSchemaProps{
			Type:  "array",
			Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &item},
		}
	}
	return valueSchema(f, parents)
}

// valueSchema is the schema of one value of a field, ignoring whether the
// field is repeated.
func valueSchema(f protoreflect.FieldDescriptor, parents []protoreflect.FullName) apiextv1.JSONSchemaProps {
	switch f.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageSchema(f.Message(), parents)
	case protoreflect.EnumKind:
		return enumSchema(f.Enum())
	}
	return scalarSchema(f.Kind())
}

// maxUint32 bounds the unsigned 32-bit integers: OpenAPI has no format for
// them, so the range says it.
const maxUint32 = 1<<32 - 1

// scalarSchema is the schema of a scalar of the given kind.
func scalarSchema(k protoreflect.Kind) apiextv1.JSONSchemaProps {
	switch k {
	case protoreflect.BoolKind:
		return apiextv1.JSONSchemaProps{Type: "boolean"}
	case protoreflect.StringKind:
		return apiextv1.JSONSchemaProps{Type: "string"}
	case protoreflect.BytesKind:
		return apiextv1.JSONSchemaProps{Type: "string", Format: "byte"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return apiextv1.JSONSchemaProps{Type: "integer", Format: "int32"}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return apiextv1.JSONSchemaProps{Type: "integer", Minimum: ptr(0.0), Maximum: ptr(float64(maxUint32))}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		// protojson writes 64-bit integers as strings (a JSON number
		// loses precision past 2^53) and reads both forms.
		return apiextv1.JSONSchemaProps{XIntOrString: true}
	case protoreflect.FloatKind:
		return apiextv1.JSONSchemaProps{Type: "number", Format: "float"}
	case protoreflect.DoubleKind:
		return apiextv1.JSONSchemaProps{Type: "number", Format: "double"}
	}
	// Every scalar kind is listed above; a new one is kept unchecked
	// rather than rejected.
	return apiextv1.JSONSchemaProps{XPreserveUnknownFields: ptr(true)}
}

// enumSchema is a string that must name one of the enum's values, in the
// order the proto declares them.
func enumSchema(ed protoreflect.EnumDescriptor) apiextv1.JSONSchemaProps {
	values := ed.Values()
	names := make([]apiextv1.JSON, 0, values.Len())
	for i := range values.Len() {
		raw, _ := json.Marshal(string(values.Get(i).Name())) // a string always marshals
		names = append(names, apiextv1.JSON{Raw: raw})
	}
	return apiextv1.JSONSchemaProps{Type: "string", Enum: names}
}

// wrappers are the google.protobuf wrapper messages: in JSON each is the
// bare value of its one field, "value".
var wrappers = map[protoreflect.FullName]bool{
	"google.protobuf.BoolValue":   true,
	"google.protobuf.StringValue": true,
	"google.protobuf.BytesValue":  true,
	"google.protobuf.Int32Value":  true,
	"google.protobuf.UInt32Value": true,
	"google.protobuf.Int64Value":  true,
	"google.protobuf.UInt64Value": true,
	"google.protobuf.FloatValue":  true,
	"google.protobuf.DoubleValue": true,
}

// wellKnownSchema is the schema of a google.protobuf message whose JSON form
// is not an object of its fields, and false for any other message.
func wellKnownSchema(md protoreflect.MessageDescriptor) (apiextv1.JSONSchemaProps, bool) {
	name := md.FullName()
	if wrappers[name] {
		return valueSchema(md.Fields().ByName("value"), nil), true
	}
	switch name {
	case "google.protobuf.Duration":
		// "1.5s": protojson accepts only seconds with a fraction, which no
		// OpenAPI format describes ("duration" would let "1h" through).
		return apiextv1.JSONSchemaProps{Type: "string"}, true
	case "google.protobuf.Timestamp":
		return apiextv1.JSONSchemaProps{Type: "string", Format: "date-time"}, true
	case "google.protobuf.FieldMask":
		return apiextv1.JSONSchemaProps{Type: "string"}, true
	case "google.protobuf.Struct", "google.protobuf.Any":
		return opaqueObject(), true
	case "google.protobuf.Value":
		// Any JSON value at all, so no type.
		return apiextv1.JSONSchemaProps{XPreserveUnknownFields: ptr(true)}, true
	case "google.protobuf.ListValue":
		anything := apiextv1.JSONSchemaProps{XPreserveUnknownFields: ptr(true)}
		return apiextv1.JSONSchemaProps{
			Type:  "array",
			Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &anything},
		}, true
	}
	return apiextv1.JSONSchemaProps{}, false
}

// opaqueObject is an object the API server stores as it is, unpruned and
// unchecked.
func opaqueObject() apiextv1.JSONSchemaProps {
	return apiextv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr(true)}
}

func ptr[T any](v T) *T { return &v }
