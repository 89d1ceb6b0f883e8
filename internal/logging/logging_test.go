package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	log, err := New("warn", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "WARN") || !strings.Contains(out, "shown") {
		t.Errorf("at warn: %q; want the warning alone, with its level", out)
	}
	if _, err := New("loud", &buf); err == nil || !strings.Contains(err.Error(), "--log-level") || !strings.Contains(err.Error(), "loud") {
		t.Errorf("an unknown level: %v; want an error naming --log-level and the value", err)
	}
}
