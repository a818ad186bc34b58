package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const userHZ = 100

// cpuSample is the CPU time used so far by the server, by this process and by the whole machine.
type cpuSample struct {
	at                  time.Time
	server, bench, busy time.Duration
	serverOK, machineOK bool
}

func sampleCPU(serverPID int) cpuSample {
	s := cpuSample{at: time.Now()}
	s.bench, _ = processCPU("self")
	if serverPID > 0 {
		s.server, s.serverOK = processCPU(strconv.Itoa(serverPID))
	}
	s.busy, s.machineOK = machineBusy()
	return s
}

// cpuUse is how many cores each used on average between two samples.
type cpuUse struct {
	server, bench, machine float64
	known                  bool
}

func (s cpuSample) until(end cpuSample) cpuUse {
	wall := end.at.Sub(s.at).Seconds()
	if wall <= 0 || !s.machineOK || !end.machineOK {
		return cpuUse{}
	}
	u := cpuUse{bench: (end.bench - s.bench).Seconds() / wall, machine: (end.busy - s.busy).Seconds() / wall, known: true}
	if s.serverOK && end.serverOK {
		u.server = (end.server - s.server).Seconds() / wall
	}
	return u
}

// processCPU is utime+stime of /proc/<pid>/stat.
func processCPU(pid string) (time.Duration, bool) {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name in parentheses: state is the first, utime the 12th, stime the 13th.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return ticks(utime + stime), true
}

// machineBusy is the machine's CPU time not idle, from the first line of /proc/stat.
func machineBusy() (time.Duration, bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var busy int64
	for i, v := range f[1:8] { // user nice system idle iowait irq softirq
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i != 3 && i != 4 { // idle and iowait are not work
			busy += n
		}
	}
	return ticks(busy), true
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }
