package main

// Splitting the CPU time of one process between the control plane and the
// load generator: in in-process mode both run in this process, so
// /proc/self counts them together. Every goroutine of the control plane
// is started under the pprof label xds_load_side=control-plane, every
// goroutine of the load generator (and the gRPC client goroutines it
// starts) under xds_load_side=load-generator; goroutines inherit the
// labels of the goroutine that starts them. A CPU profile taken during
// each phase then tells the two apart. Samples without the label are the
// Go runtime's own work (GC background workers, the scheduler), shared by
// both and reported as unattributed.

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"google.golang.org/protobuf/encoding/protowire"
)

const (
	sideLabel     = "xds_load_side"
	sideCP        = "control-plane"
	sideLoadGen   = "load-generator"
	profileSuffix = ".pprof"
)

// CPUSplit is CPU seconds by side, from a CPU profile (sampled at 100 Hz).
type CPUSplit struct {
	ControlPlane  float64 `json:"control_plane_s"`
	LoadGenerator float64 `json:"load_generator_s"`
	Unattributed  float64 `json:"unattributed_s"`
}

func (s *CPUSplit) add(o CPUSplit) {
	s.ControlPlane += o.ControlPlane
	s.LoadGenerator += o.LoadGenerator
	s.Unattributed += o.Unattributed
}

// profiler takes one CPU profile per phase.
type profiler struct {
	prefix string // write each phase's profile to prefix.PHASE.pprof ("" : keep in memory only)
	buf    bytes.Buffer
	phase  string
	on     bool
	files  []string
}

func (p *profiler) start(phase string) error {
	p.buf.Reset()
	if err := pprof.StartCPUProfile(&p.buf); err != nil {
		return err
	}
	p.phase, p.on = phase, true
	return nil
}

// stop ends the phase's profile and splits it.
func (p *profiler) stop() (CPUSplit, error) {
	if !p.on {
		return CPUSplit{}, errors.New("profiler not running")
	}
	pprof.StopCPUProfile()
	p.on = false
	if p.prefix != "" {
		name := p.prefix + "." + p.phase + profileSuffix
		if err := os.WriteFile(name, p.buf.Bytes(), 0o644); err != nil {
			return CPUSplit{}, err
		}
		p.files = append(p.files, name)
	}
	return splitProfile(p.buf.Bytes())
}

// splitProfile sums a Go CPU profile's cpu nanoseconds by the side label.
// It reads the profile.proto wire format directly (gzip, then protobuf:
// sample_type = 1, sample = 2, string_table = 6).
func splitProfile(gz []byte) (CPUSplit, error) {
	var split CPUSplit
	if len(gz) == 0 {
		return split, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return split, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return split, err
	}
	var (
		sampleTypes [][2]int64 // (type, unit) string indexes
		samples     [][]byte
		strs        []string
	)
	err = fields(data, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			var vt [2]int64
			err := fields(b, func(n protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
				if n == 1 || n == 2 {
					vt[n-1] = int64(v)
				}
				return nil
			})
			sampleTypes = append(sampleTypes, vt)
			return err
		case num == 2 && typ == protowire.BytesType:
			samples = append(samples, b)
		case num == 6 && typ == protowire.BytesType:
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return split, err
	}
	str := func(i int64) string {
		if i >= 0 && int(i) < len(strs) {
			return strs[i]
		}
		return ""
	}
	cpu := -1
	for i, st := range sampleTypes {
		if str(st[0]) == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		return split, errors.New("profile has no cpu sample type")
	}
	for _, s := range samples {
		var values []int64
		side := ""
		err := fields(s, func(n protowire.Number, typ protowire.Type, v uint64, b []byte) error {
			switch n {
			case 2:
				if typ == protowire.BytesType { // packed
					for len(b) > 0 {
						x, k := protowire.ConsumeVarint(b)
						if k < 0 {
							return protowire.ParseError(k)
						}
						values = append(values, int64(x))
						b = b[k:]
					}
				} else {
					values = append(values, int64(v))
				}
			case 3:
				var key, val int64
				err := fields(b, func(n protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
					switch n {
					case 1:
						key = int64(v)
					case 2:
						val = int64(v)
					}
					return nil
				})
				if err != nil {
					return err
				}
				if str(key) == sideLabel {
					side = str(val)
				}
			}
			return nil
		})
		if err != nil {
			return split, err
		}
		if cpu >= len(values) {
			continue
		}
		sec := float64(values[cpu]) / 1e9
		switch side {
		case sideCP:
			split.ControlPlane += sec
		case sideLoadGen:
			split.LoadGenerator += sec
		default:
			split.Unattributed += sec
		}
	}
	return split, nil
}

// fields calls f for each field of a protobuf message: v is the value of
// a varint or fixed field, b the contents of a length-delimited one.
func fields(data []byte, f func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		var (
			v uint64
			b []byte
		)
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(data)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(data)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(data)
			v = uint64(x)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(data)
		default:
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return fmt.Errorf("profile: %w", protowire.ParseError(n))
		}
		data = data[n:]
		if err := f(num, typ, v, b); err != nil {
			return err
		}
	}
	return nil
}
