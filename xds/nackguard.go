package xds

import (
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
)

// nackGuard stops the resend loop that follows a NACK.
//
// In the state-of-the-world protocol a NACK carries the version the proxy
// still runs (the last one it accepted). go-control-plane's cache sees that
// it differs from the snapshot and answers at once with the same rejected
// version, which the proxy rejects again, thousands of times a second. The
// guard rewrites a NACK's version to the rejected one, so the watch waits
// until the snapshot really changes.
type nackGuard struct {
	cachev3.Cache
	tracker *Tracker
}

// CreateWatch opens a state-of-the-world watch.
func (g *nackGuard) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	if req.GetErrorDetail() != nil {
		if rejected, ok := g.tracker.rejectedVersion(req.GetNode().GetId(), req.GetTypeUrl(), req.GetResponseNonce()); ok {
			req = proto.Clone(req).(*cachev3.Request)
			req.VersionInfo = rejected
		}
	}
	return g.Cache.CreateWatch(req, sub, out)
}
