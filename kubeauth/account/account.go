// Package account names the Kubernetes service account a proxy's token
// belongs to. It is what the xDS server needs to know of token
// authentication, and it imports none of Kubernetes' client libraries, so
// that a build without Kubernetes mode (no -tags kubernetes) links none of them;
// package kubeauth does the checking.
package account

// Audience is the audience minimesh's tokens are requested for. A token for
// another audience (the API server's own, say) is refused: it was meant
// for someone else, and whoever holds it may not be its owner.
const Audience = "minimesh"

// Identity is the service account a token belongs to.
type Identity struct {
	Namespace      string
	ServiceAccount string
}

func (id Identity) String() string { return id.Namespace + "/" + id.ServiceAccount }
