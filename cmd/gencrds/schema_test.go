package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/structpb"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// at walks a schema along a path of property names; "[]" steps into array
// items and "{}" into map values.
func at(t *testing.T, s apiextv1.JSONSchemaProps, path string) apiextv1.JSONSchemaProps {
	t.Helper()
	for _, step := range strings.Split(path, ".") {
		switch step {
		case "[]":
			if s.Items == nil || s.Items.Schema == nil {
				t.Fatalf("%s: %s is not an array", path, step)
			}
			s = *s.Items.Schema
		case "{}":
			if s.AdditionalProperties == nil || s.AdditionalProperties.Schema == nil {
				t.Fatalf("%s: %s is not a map", path, step)
			}
			s = *s.AdditionalProperties.Schema
		default:
			next, ok := s.Properties[step]
			if !ok {
				t.Fatalf("%s: no property %q", path, step)
			}
			s = next
		}
	}
	return s
}

// schemaJSON renders a schema compactly, for comparing with a literal.
func schemaJSON(t *testing.T, s apiextv1.JSONSchemaProps) string {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestSchemaFollowsProtoJSON checks one field of each JSON form against
// schemas written out by hand.
func TestSchemaFollowsProtoJSON(t *testing.T) {
	vs := messageSchema((&networking.VirtualService{}).ProtoReflect().Descriptor(), nil)
	dr := messageSchema((&networking.DestinationRule{}).ProtoReflect().Descriptor(), nil)
	se := messageSchema((&networking.ServiceEntry{}).ProtoReflect().Descriptor(), nil)
	we := messageSchema((&networking.WorkloadEntry{}).ProtoReflect().Descriptor(), nil)
	pa := messageSchema((&security.PeerAuthentication{}).ProtoReflect().Descriptor(), nil)

	tests := []struct {
		name   string
		schema apiextv1.JSONSchemaProps
		path   string
		want   string
	}{
		{"repeated string", vs, "hosts", `{"type":"array","items":{"type":"string"}}`},
		{"int32", vs, "http.[].route.[].weight", `{"type":"integer","format":"int32"}`},
		{"uint32", se, "ports.[].number", `{"type":"integer","maximum":4294967295,"minimum":0}`},
		{"enum", se, "resolution", `{"type":"string","enum":["NONE","STATIC","DNS","DNS_ROUND_ROBIN","DYNAMIC_DNS"]}`},
		{"map of uint32", we, "ports", `{"type":"object","additionalProperties":{"type":"integer","maximum":4294967295,"minimum":0}}`},
		{"map of string", dr, "subsets.[].labels", `{"type":"object","additionalProperties":{"type":"string"}}`},
		{"lowerCamel JSON name", vs, "http.[].match.[].sourceLabels", `{"type":"object","additionalProperties":{"type":"string"}}`},
		{"Duration", vs, "http.[].timeout", `{"type":"string"}`},
		{"BoolValue", vs, "http.[].retries.retryRemoteLocalities", `{"type":"boolean"}`},
		{"UInt32Value", dr, "trafficPolicy.outlierDetection.consecutive5xxErrors", `{"type":"integer","maximum":4294967295,"minimum":0}`},
		{"uint64", dr, "trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize", `{"x-kubernetes-int-or-string":true}`},
		{"double", vs, "http.[].fault.delay.percentage.value", `{"type":"number","format":"double"}`},
		{"bytes", vs, "http.[].directResponse.body.bytes", `{"type":"string","format":"byte"}`},
		{"oneof member", vs, "http.[].match.[].uri.prefix", `{"type":"string"}`},
		{"map of messages, uint32 keys", pa, "portLevelMtls.{}.mode", `{"type":"string","enum":["UNSET","DISABLE","PERMISSIVE","STRICT"]}`},
		{"nested message", pa, "selector.matchLabels", `{"type":"object","additionalProperties":{"type":"string"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := schemaJSON(t, at(t, tt.schema, tt.path))
			var gotV, wantV any
			if err := json.Unmarshal([]byte(got), &gotV); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &wantV); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantV, gotV); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.path, diff)
			}
		})
	}
}

// TestRecursiveMessageStops uses a message that contains itself
// (descriptor.proto's DescriptorProto nests DescriptorProtos): the second
// occurrence becomes an opaque object instead of an endless schema.
func TestRecursiveMessageStops(t *testing.T) {
	s := messageSchema((&descriptorpb.DescriptorProto{}).ProtoReflect().Descriptor(), nil)
	nested := at(t, s, "nestedType.[]")
	if nested.Type != "object" || nested.XPreserveUnknownFields == nil || !*nested.XPreserveUnknownFields || len(nested.Properties) != 0 {
		t.Errorf("nestedType items = %s, want an opaque object", schemaJSON(t, nested))
	}
	// A message met twice side by side, not inside itself, is expanded both times.
	if got := at(t, s, "field.[].name").Type; got != "string" {
		t.Errorf("field.[].name has type %q, want string", got)
	}
}

// TestDepthLimit starts a schema as if already maxDepth messages deep.
func TestDepthLimit(t *testing.T) {
	parents := make([]protoreflect.FullName, maxDepth)
	for i := range parents {
		parents[i] = protoreflect.FullName("outer" + string(rune('a'+i)))
	}
	s := messageSchema((&networking.HTTPRoute{}).ProtoReflect().Descriptor(), parents)
	if s.Type != "object" || s.XPreserveUnknownFields == nil || len(s.Properties) != 0 {
		t.Errorf("schema past the depth limit = %s, want an opaque object", schemaJSON(t, s))
	}
}

// TestNoIstioSchemaHitsTheGuards: the guards are for other messages; the
// Istio kinds must be expanded completely.
func TestNoIstioSchemaHitsTheGuards(t *testing.T) {
	for _, k := range kinds {
		var walk func(path string, s apiextv1.JSONSchemaProps)
		walk = func(path string, s apiextv1.JSONSchemaProps) {
			if s.XPreserveUnknownFields != nil {
				t.Errorf("%s: %s is kept unchecked", k.kind, path)
			}
			for name, p := range s.Properties {
				walk(path+"."+name, p)
			}
			if s.Items != nil && s.Items.Schema != nil {
				walk(path+"[]", *s.Items.Schema)
			}
			if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
				walk(path+"{}", *s.AdditionalProperties.Schema)
			}
		}
		walk("spec", messageSchema(k.spec, nil))
	}
}

// TestStructIsKeptAsWritten: google.protobuf.Struct holds any JSON object.
func TestStructIsKeptAsWritten(t *testing.T) {
	got, ok := wellKnownSchema((&structpb.Struct{}).ProtoReflect().Descriptor())
	if !ok || got.Type != "object" || got.XPreserveUnknownFields == nil || !*got.XPreserveUnknownFields {
		t.Errorf("Struct schema = %s, want an object with x-kubernetes-preserve-unknown-fields", schemaJSON(t, got))
	}
	got, ok = wellKnownSchema((&structpb.Value{}).ProtoReflect().Descriptor())
	if !ok || got.Type != "" || got.XPreserveUnknownFields == nil {
		t.Errorf("Value schema = %s, want any value", schemaJSON(t, got))
	}
}
