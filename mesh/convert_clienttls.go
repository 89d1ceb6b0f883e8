package mesh

import (
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// tlsModes maps Istio's client TLS modes to the model.
var tlsModes = map[networking.ClientTLSSettings_TLSmode]TLSMode{
	networking.ClientTLSSettings_DISABLE:      TLSDisable,
	networking.ClientTLSSettings_SIMPLE:       TLSSimple,
	networking.ClientTLSSettings_MUTUAL:       TLSMutual,
	networking.ClientTLSSettings_ISTIO_MUTUAL: TLSIstioMutual,
}

// convertClientTLS converts trafficPolicy.tls; nil stays nil. As in Istio,
// a tls block without mode is DISABLE.
//
// Settings a mode does not use are reported and left out of the model, so
// that the translator can use every field it finds. credentialName (a
// Kubernetes secret) was reported as unsupported by the decoder; the
// checks below treat it as absent, except where Istio itself rejects the
// combination.
func convertClientTLS(tls *networking.ClientTLSSettings, path fieldPath, r *report) *ClientTLS {
	if tls == nil {
		return nil
	}
	mode, ok := tlsModes[tls.GetMode()]
	if !ok {
		r.errorf(path.field("mode"), "unknown mode %d, want one of %s",
			tls.GetMode(), strings.Join(enumNames(tls.GetMode().Descriptor()), ", "))
		return nil
	}
	out := &ClientTLS{
		Mode:               mode,
		ClientCertificate:  tls.GetClientCertificate(),
		PrivateKey:         tls.GetPrivateKey(),
		CACertificates:     tls.GetCaCertificates(),
		SNI:                tls.GetSni(),
		SubjectAltNames:    slices.Clone(tls.GetSubjectAltNames()),
		InsecureSkipVerify: tls.GetInsecureSkipVerify().GetValue(),
	}
	switch mode {
	case TLSDisable:
		ignoreTLSFields(out, path, r, "with mode DISABLE (no TLS)",
			"clientCertificate", "privateKey", "caCertificates", "sni", "subjectAltNames", "insecureSkipVerify")
	case TLSIstioMutual:
		ignoreTLSFields(out, path, r, "with mode ISTIO_MUTUAL: the certificates minimesh issues are used, "+
			"and the server's identity is always verified",
			"clientCertificate", "privateKey", "caCertificates", "insecureSkipVerify")
	case TLSSimple:
		ignoreTLSFields(out, path, r, "with mode SIMPLE: only MUTUAL presents a client certificate",
			"clientCertificate", "privateKey")
		checkFileTLS(tls, out, path, r)
	case TLSMutual:
		checkFileTLS(tls, out, path, r)
	}
	return out
}

// ignoreTLSFields warns about each named field that is set in out, and
// clears it. why completes "ignored ...".
func ignoreTLSFields(out *ClientTLS, path fieldPath, r *report, why string, names ...string) {
	for _, name := range names {
		set := false
		switch name {
		case "clientCertificate":
			set, out.ClientCertificate = out.ClientCertificate != "", ""
		case "privateKey":
			set, out.PrivateKey = out.PrivateKey != "", ""
		case "caCertificates":
			set, out.CACertificates = out.CACertificates != "", ""
		case "sni":
			set, out.SNI = out.SNI != "", ""
		case "subjectAltNames":
			set, out.SubjectAltNames = len(out.SubjectAltNames) > 0, nil
		case "insecureSkipVerify":
			set, out.InsecureSkipVerify = out.InsecureSkipVerify, false
		}
		if set {
			r.warnf(path.field(name), "ignored %s", why)
		}
	}
}

// checkFileTLS checks the settings of SIMPLE and MUTUAL, which take their
// certificates from files.
func checkFileTLS(tls *networking.ClientTLSSettings, out *ClientTLS, path fieldPath, r *report) {
	if tls.GetCredentialName() != "" && (tls.GetClientCertificate() != "" ||
		tls.GetPrivateKey() != "" || tls.GetCaCertificates() != "") {
		r.errorf(path.field("credentialName"), "set either credentialName or the certificate files "+
			"(clientCertificate, privateKey, caCertificates), not both (Istio rejects this too)")
	}
	if out.Mode == TLSMutual {
		if out.ClientCertificate == "" {
			r.errorf(path.field("clientCertificate"), "missing: mode MUTUAL needs the client certificate (a PEM file)")
		}
		if out.PrivateKey == "" {
			r.errorf(path.field("privateKey"), "missing: mode MUTUAL needs the client's private key (a PEM file)")
		}
	}
	if out.InsecureSkipVerify && (out.CACertificates != "" || len(out.SubjectAltNames) > 0) {
		r.errorf(path.field("insecureSkipVerify"), "true, yet caCertificates or subjectAltNames "+
			"say how to verify the server; set one or the other (Istio rejects this too)")
	}
}
