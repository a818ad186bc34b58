package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const userHZ = 100

// cpuSample is the CPU time used so far by the server, by this process, by PostgreSQL's
// processes and by the whole machine.
type cpuSample struct {
	at                  time.Time
	server, bench, busy time.Duration
	serverOK, machineOK bool
	postgres            map[string]time.Duration // each postgres process's CPU time so far, by pid
}

func sampleCPU(serverPID int) cpuSample {
	s := cpuSample{at: time.Now()}
	s.bench, _ = processCPU("self")
	if serverPID > 0 {
		s.server, s.serverOK = processCPU(strconv.Itoa(serverPID))
	}
	s.postgres = postgresCPU()
	s.busy, s.machineOK = machineBusy()
	return s
}

// cpuUse is how many cores each used on average between two samples, and the CPU time
// PostgreSQL used in all.
type cpuUse struct {
	server, bench, machine float64
	known                  bool
	// database is the CPU time of every process named postgres (the backends, the WAL writer,
	// the checkpointer…) between the samples: whoever's work it was, the bench's or another's.
	database time.Duration
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
	u.database = databaseCPUBetween(s.postgres, end.postgres)
	return u
}

// databaseCPUBetween is the CPU time PostgreSQL's processes used between two samples: what each
// process alive at the end used since the first sample, or since it started when it was not there
// yet. A backend that ended in between takes its last stretch with it (the bench's pools keep
// theirs open for the whole run).
func databaseCPUBetween(start, end map[string]time.Duration) time.Duration {
	var used time.Duration
	for pid, t := range end {
		used += t - start[pid]
	}
	return used
}

// postgresCPU is utime+stime of every process whose /proc/<pid>/comm is "postgres", by pid.
func postgresCPU() map[string]time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	cpu := map[string]time.Duration{}
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		comm, err := os.ReadFile("/proc/" + pid + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if t, ok := processCPU(pid); ok {
			cpu[pid] = t
		}
	}
	return cpu
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
