package watcher

import (
	"errors"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/minimesh/minimesh/mesh"
)

// ProblemLog logs each problem once, when it first appears: a rebuild that
// meets the same invalid object again says nothing new. A diagnostic is
// logged at the level of its severity, any other problem at the level given
// to NewProblemLog.
type ProblemLog struct {
	log   *zap.Logger
	other zapcore.Level
	seen  map[string]bool // the problems of the last report
}

// NewProblemLog returns a ProblemLog that has seen nothing yet.
func NewProblemLog(log *zap.Logger, other zapcore.Level) *ProblemLog {
	return &ProblemLog{log: log, other: other, seen: map[string]bool{}}
}

// Report logs the problems not in the last report; a problem that went away
// and comes back is logged again.
func (p *ProblemLog) Report(problems []error) {
	current := make(map[string]bool, len(problems))
	for _, problem := range problems {
		msg := problem.Error()
		current[msg] = true
		if p.seen[msg] {
			continue
		}
		level := p.other
		var d mesh.Diagnostic
		if errors.As(problem, &d) {
			level = severityLevel(d.Severity)
		}
		p.log.Log(level, msg)
	}
	p.seen = current
}

func severityLevel(s mesh.Severity) zapcore.Level {
	switch s {
	case mesh.SeverityInfo:
		return zapcore.InfoLevel
	case mesh.SeverityWarning:
		return zapcore.WarnLevel
	default:
		return zapcore.ErrorLevel
	}
}
