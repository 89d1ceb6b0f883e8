package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go runs on (reading it needs sysconf,
// that is cgo).
const clockTicks = 100

// procStat is what /proc says about one process.
type procStat struct {
	CPUSeconds float64 // user + system
	// MinorFaults: page faults served without I/O, mostly memory the
	// process touched for the first time (mapped and zeroed by the kernel;
	// 1.4–10 µs each on the machine of docs/performance.md).
	MinorFaults int64
	RSSBytes    int64 // VmRSS
	PeakBytes   int64 // VmHWM: peak resident set
	AnonBytes   int64 // RssAnon: the part of VmRSS that is the process's own memory
	FileBytes   int64 // RssFile + RssShmem: the part mapped from files, the executable's pages mostly
}

// readProc reads /proc/PID (pid 0: this process).
func readProc(pid int) (procStat, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = fmt.Sprintf("/proc/%d", pid)
	}
	var st procStat
	data, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return st, err
	}
	// The command name may contain spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return st, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is the state (field 3); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return st, fmt.Errorf("%s/stat: too few fields", dir)
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return st, fmt.Errorf("process %s has exited", strings.TrimPrefix(dir, "/proc/"))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return st, fmt.Errorf("%s/stat: bad utime/stime", dir)
	}
	st.CPUSeconds = float64(utime+stime) / clockTicks
	if st.MinorFaults, err = strconv.ParseInt(fields[7], 10, 64); err != nil { // field 10, minflt
		return st, fmt.Errorf("%s/stat: bad minflt", dir)
	}
	f, err := os.Open(dir + "/status")
	if err != nil {
		return st, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			st.RSSBytes = kB(line)
		case strings.HasPrefix(line, "VmHWM:"):
			st.PeakBytes = kB(line)
		case strings.HasPrefix(line, "RssAnon:"):
			st.AnonBytes = kB(line)
		case strings.HasPrefix(line, "RssFile:"), strings.HasPrefix(line, "RssShmem:"):
			st.FileBytes += kB(line)
		}
	}
	return st, sc.Err()
}

// kB parses "VmRSS:    1234 kB" into bytes.
func kB(line string) int64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * 1024
}

// Machine describes where the test ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	MemoryMiB int64  `json:"memory_mib"`
	CPUModel  string `json:"cpu_model,omitempty"`
	GoVersion string `json:"go_version"`
}

func readMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				m.MemoryMiB = kB(line) >> 20
			}
		}
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
