package certs

import "testing"

func TestSPIFFEID(t *testing.T) {
	id := Identity{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "web"}
	if got, want := id.SPIFFEID(), "spiffe://cluster.local/ns/default/sa/web"; got != want {
		t.Errorf("SPIFFEID() = %q, want %q", got, want)
	}
	if got, want := id.URI().String(), "spiffe://cluster.local/ns/default/sa/web"; got != want {
		t.Errorf("URI() = %q, want %q", got, want)
	}
	got, err := ParseSPIFFEID("spiffe://example.org/ns/shop-prod/sa/cart_v2.1")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Identity{"example.org", "shop-prod", "cart_v2.1"}); got != want {
		t.Errorf("ParseSPIFFEID = %+v, want %+v", got, want)
	}
}

func TestParseSPIFFEIDRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"http://cluster.local/ns/a/sa/b", `must start with "spiffe://"`},
		{"SPIFFE://cluster.local/ns/a/sa/b", `must start with "spiffe://"`},
		{"spiffe:/cluster.local/ns/a/sa/b", `must start with "spiffe://"`},
		{"spiffe://", "trust domain is empty"},
		{"spiffe:///ns/a/sa/b", "trust domain is empty"},
		{"spiffe://Cluster.local/ns/a/sa/b", "trust domain"},
		{"spiffe://cluster.local:8080/ns/a/sa/b", `contains ':'`},
		{"spiffe://user@cluster.local/ns/a/sa/b", `contains '@'`},
		{"spiffe://cluster.local", "path must be"},
		{"spiffe://cluster.local/", "path must be"},
		{"spiffe://cluster.local/ns/a/sa", "path must be"},
		{"spiffe://cluster.local/ns/a/sa/b/", "path must be"},
		{"spiffe://cluster.local/ns/a/sa/b/c", "path must be"},
		{"spiffe://cluster.local/namespace/a/sa/b", "path must be"},
		{"spiffe://cluster.local/ns/a/serviceaccount/b", "path must be"},
		{"spiffe://cluster.local//ns/a/sa/b", "path must be"},
		{"spiffe://cluster.local/ns//sa/b", "namespace is empty"},
		{"spiffe://cluster.local/ns/a/sa/", "service account is empty"},
		{"spiffe://cluster.local/ns/../sa/b", `namespace ".." is not allowed`},
		{"spiffe://cluster.local/ns/a%2Fb/sa/c", `contains '%'`},
		{"spiffe://cluster.local/ns/a/sa/b?x=1", `contains '?'`},
		{"spiffe://cluster.local/ns/a/sa/b#frag", `contains '#'`},
		{"spiffe://cluster.local/ns/a b/sa/c", `contains ' '`},
		{"spiffe://cluster.local/ns/a/sa/" + string(make([]byte, 2100)), "longer than 2048"},
	} {
		id, err := ParseSPIFFEID(tc.in)
		if err == nil {
			t.Errorf("ParseSPIFFEID(%q) = %+v, want error", tc.in, id)
			continue
		}
		wantErr(t, err, tc.want)
	}
}

func TestIdentityValidate(t *testing.T) {
	if err := (Identity{"cluster.local", "default", "web"}).Validate(); err != nil {
		t.Errorf("valid identity rejected: %v", err)
	}
	wantErr(t, Identity{"cluster.local", "", "web"}.Validate(), "namespace is empty")
	wantErr(t, Identity{"cluster.local", "ns", "a/b"}.Validate(), "service account", `'/'`)
	wantErr(t, Identity{"", "ns", "sa"}.Validate(), "trust domain is empty")
}
