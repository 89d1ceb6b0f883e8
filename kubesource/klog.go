package kubesource

import (
	"sync"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
	"k8s.io/klog/v2"
)

// routeKlog sends client-go's own log lines (leader election, watch
// retries) into minimesh's logger instead of raw stderr: its errors as
// warnings (client-go retries them), the rest at debug level.
//
// klog's logger is one per process, and it may be set only before
// client-go starts logging: the first control plane's logger is kept (a
// process runs one, except in tests that start several replicas).
func routeKlog(log *zap.Logger) {
	klogRouted.Do(func() {
		klog.SetLogger(logr.New(&klogSink{log: log.WithOptions(zap.AddCallerSkip(1))}))
	})
}

var klogRouted sync.Once

// klogSink is a logr.LogSink writing to zap.
type klogSink struct {
	log *zap.Logger
}

func (s *klogSink) Init(logr.RuntimeInfo)  {}
func (s *klogSink) Enabled(level int) bool { return s.log.Core().Enabled(zap.DebugLevel) }

func (s *klogSink) Info(level int, msg string, kv ...any) {
	s.log.Debug(msg, fields(kv)...)
}

func (s *klogSink) Error(err error, msg string, kv ...any) {
	s.log.Warn(msg, append(fields(kv), zap.Error(err))...)
}

func (s *klogSink) WithValues(kv ...any) logr.LogSink {
	return &klogSink{log: s.log.With(fields(kv)...)}
}

func (s *klogSink) WithName(name string) logr.LogSink {
	return &klogSink{log: s.log.Named(name)}
}

// fields turns logr's alternating keys and values into zap fields.
func fields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = "key"
		}
		out = append(out, zap.Any(key, kv[i+1]))
	}
	return out
}
