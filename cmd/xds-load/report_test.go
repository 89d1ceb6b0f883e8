package main

import "testing"

// TestPeakPhase: the peak is credited to the first phase whose high-water
// mark reached it.
func TestPeakPhase(t *testing.T) {
	r := &Report{Connect: ConnectReport{PeakRSSMiB: 50}, Changes: []ChangeReport{
		{Kind: kindVS, PeakRSSMiB: 50}, {Kind: kindEndpoint, PeakRSSMiB: 58}, {Kind: kindPA, PeakRSSMiB: 58}}}
	for _, c := range []struct {
		peak float64
		want string
	}{{50, "connect"}, {58, kindEndpoint}, {60, ""}, {0, ""}} {
		r.Resources.PeakRSSMiB = c.peak
		if got := r.peakPhase(); got != c.want {
			t.Errorf("peak %v: phase %q, want %q", c.peak, got, c.want)
		}
	}
}
