package mesh

import (
	"maps"
	"regexp"

	networking "istio.io/api/networking/v1alpha3"
)

// convertDestinationRule turns a DestinationRule into the model, or returns
// nil after reporting why it cannot. Checks that need the other objects
// (does the host exist? do subsets select anything?) are in build.go.
func convertDestinationRule(ref Ref, dr *networking.DestinationRule, domainSuffix string, r *report) *DestinationRule {
	switch host := dr.GetHost(); {
	case host == "":
		r.errorf("spec.host", "missing: the host the rule applies to is required")
	case !isValidHost(host):
		r.errorf("spec.host", "%q is not a valid host name", host)
	}
	policy := convertTrafficPolicy(dr.GetTrafficPolicy(), "spec.trafficPolicy", r)
	subsets := convertSubsets(dr.GetSubsets(), policy, r)
	if !r.ok() {
		return nil
	}
	return &DestinationRule{
		Name:          ref.Name,
		Namespace:     ref.Namespace,
		Host:          ResolveHost(dr.GetHost(), ref.Namespace, domainSuffix),
		TrafficPolicy: policy,
		Subsets:       subsets,
		Source:        ref,
	}
}

// subsetName is what a subset name must look like: a DNS label, because it
// becomes part of Envoy cluster names ("outbound|80|v1|my-app...").
var subsetName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// convertSubsets checks spec.subsets and returns them in the order written,
// each with its final traffic policy.
func convertSubsets(subsets []*networking.Subset, rulePolicy *TrafficPolicy, r *report) []Subset {
	seen := map[string]int{} // name -> index where first seen
	out := make([]Subset, 0, len(subsets))
	for i, s := range subsets {
		path := fieldPath("spec.subsets").index(i)
		switch j, dup := seen[s.GetName()]; {
		case s.GetName() == "":
			r.errorf(path.field("name"), "missing: every subset needs a name")
		case !subsetName.MatchString(s.GetName()):
			r.errorf(path.field("name"), "%q is not a valid subset name "+
				"(lower case letters, digits and '-', like a DNS label)", s.GetName())
		case dup:
			r.errorf(path.field("name"), "subset %q is also spec.subsets[%d]; subset names must be unique", s.GetName(), j)
		default:
			seen[s.GetName()] = i
		}
		if len(s.GetLabels()) == 0 {
			r.errorf(path.field("labels"), "missing: a subset selects endpoints by labels")
		}
		own := convertTrafficPolicy(s.GetTrafficPolicy(), path.field("trafficPolicy"), r)
		out = append(out, Subset{
			Name:          s.GetName(),
			Labels:        maps.Clone(s.GetLabels()),
			TrafficPolicy: mergeTrafficPolicy(rulePolicy, own),
		})
	}
	return out
}

// mergeTrafficPolicy returns the policy of a subset: the rule's policy with
// each of the subset's own settings (load balancer, connection pool, outlier
// detection, tls) put over it. The settings replace each other whole, as in
// Istio: a subset's connectionPool does not inherit the rule's maxRetries.
func mergeTrafficPolicy(rule, subset *TrafficPolicy) *TrafficPolicy {
	switch {
	case subset == nil:
		return rule
	case rule == nil:
		return subset
	}
	merged := *rule
	if subset.LoadBalancer != LBDefault {
		merged.LoadBalancer = subset.LoadBalancer
	}
	if subset.ConnectionPool != nil {
		merged.ConnectionPool = subset.ConnectionPool
	}
	if subset.OutlierDetection != nil {
		merged.OutlierDetection = subset.OutlierDetection
	}
	if subset.TLS != nil {
		merged.TLS = subset.TLS
	}
	return &merged
}

// convertTrafficPolicy converts a traffic policy; nil stays nil.
func convertTrafficPolicy(tp *networking.TrafficPolicy, path fieldPath, r *report) *TrafficPolicy {
	if tp == nil {
		return nil
	}
	return &TrafficPolicy{
		LoadBalancer:     convertLoadBalancer(tp.GetLoadBalancer()),
		ConnectionPool:   convertConnectionPool(tp.GetConnectionPool(), path.field("connectionPool"), r),
		OutlierDetection: convertOutlierDetection(tp.GetOutlierDetection(), path.field("outlierDetection"), r),
		TLS:              convertClientTLS(tp.GetTls(), path.field("tls"), r),
	}
}

// simpleLoadBalancers maps Istio's simple load balancers to the model.
// LEAST_CONN is Istio's old name for LEAST_REQUEST.
var simpleLoadBalancers = map[networking.LoadBalancerSettings_SimpleLB]LoadBalancer{
	networking.LoadBalancerSettings_UNSPECIFIED:   LBDefault,
	networking.LoadBalancerSettings_ROUND_ROBIN:   LBRoundRobin,
	networking.LoadBalancerSettings_LEAST_REQUEST: LBLeastRequest,
	networking.LoadBalancerSettings_LEAST_CONN:    LBLeastRequest,
	networking.LoadBalancerSettings_RANDOM:        LBRandom,
	networking.LoadBalancerSettings_PASSTHROUGH:   LBPassthrough,
}

// convertLoadBalancer converts loadBalancer.simple. The other algorithms
// (consistentHash, ...) were reported as unsupported by the decoder, and
// leave the default.
func convertLoadBalancer(lb *networking.LoadBalancerSettings) LoadBalancer {
	return simpleLoadBalancers[lb.GetSimple()]
}

// convertConnectionPool converts connectionPool; nil stays nil.
func convertConnectionPool(cp *networking.ConnectionPoolSettings, path fieldPath, r *report) *ConnectionPool {
	if cp == nil {
		return nil
	}
	tcp, tcpPath := cp.GetTcp(), path.field("tcp")
	http, httpPath := cp.GetHttp(), path.field("http")
	return &ConnectionPool{
		MaxConnections:           count(tcp.GetMaxConnections(), tcpPath.field("maxConnections"), r),
		ConnectTimeout:           duration(tcp.GetConnectTimeout(), tcpPath.field("connectTimeout"), r),
		HTTP1MaxPendingRequests:  count(http.GetHttp1MaxPendingRequests(), httpPath.field("http1MaxPendingRequests"), r),
		HTTP2MaxRequests:         count(http.GetHttp2MaxRequests(), httpPath.field("http2MaxRequests"), r),
		MaxRequestsPerConnection: count(http.GetMaxRequestsPerConnection(), httpPath.field("maxRequestsPerConnection"), r),
		MaxRetries:               count(http.GetMaxRetries(), httpPath.field("maxRetries"), r),
		IdleTimeout:              duration(http.GetIdleTimeout(), httpPath.field("idleTimeout"), r),
	}
}

// convertOutlierDetection converts outlierDetection; nil stays nil. An
// empty outlierDetection is kept: it turns ejection on with Envoy's
// defaults, as in Istio.
func convertOutlierDetection(od *networking.OutlierDetection, path fieldPath, r *report) *OutlierDetection {
	if od == nil {
		return nil
	}
	if w := od.GetConsecutive_5XxErrors(); w != nil && w.GetValue() == 0 {
		r.warnf(path.field("consecutive5xxErrors"), "0 turns 5xx ejection off in Istio; "+
			"minimesh cannot express that yet and leaves Envoy's default (5)")
	}
	maxEject := count(od.GetMaxEjectionPercent(), path.field("maxEjectionPercent"), r)
	if maxEject > 100 {
		r.errorf(path.field("maxEjectionPercent"), "%d is not a percentage, want 0-100", maxEject)
	}
	return &OutlierDetection{
		Consecutive5xxErrors:     od.GetConsecutive_5XxErrors().GetValue(),
		ConsecutiveGatewayErrors: od.GetConsecutiveGatewayErrors().GetValue(),
		Interval:                 duration(od.GetInterval(), path.field("interval"), r),
		BaseEjectionTime:         duration(od.GetBaseEjectionTime(), path.field("baseEjectionTime"), r),
		MaxEjectionPercent:       maxEject,
	}
}
