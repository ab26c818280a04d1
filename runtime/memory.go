package runtime

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
)

// Memory checks. A model's memory is planned ahead (its arena, its weights): before the
// interpreter or a generated package allocates, the planned total is compared with what the
// machine can give, and a plan that cannot fit is an error stating its size, not a Go
// runtime crash ("fatal error: out of memory") halfway through allocating.

// MemoryLimitEnv names the environment variable that, when set to a number of bytes,
// replaces the measured available memory: for tests, and for users who know better than
// the measurement.
const MemoryLimitEnv = "RFC_MEMORY_LIMIT"

// fallbackMemory is the limit where the available memory cannot be measured (systems other
// than Linux): 128 TiB, the user address space of amd64 and arm64. It refuses only plans no
// such machine can map; a smaller plan that does not fit then fails as the OS decides.
const fallbackMemory = 1 << 47

var memoryOverride struct {
	sync.Mutex
	set   bool
	bytes int64
}

// SetAvailableMemory makes the memory checks take n bytes as the available memory, until
// the returned function restores the previous setting (tests; the environment variable
// MemoryLimitEnv does the same across processes).
func SetAvailableMemory(n int64) (restore func()) {
	memoryOverride.Lock()
	defer memoryOverride.Unlock()
	oldSet, oldBytes := memoryOverride.set, memoryOverride.bytes
	memoryOverride.set, memoryOverride.bytes = true, n
	return func() {
		memoryOverride.Lock()
		defer memoryOverride.Unlock()
		memoryOverride.set, memoryOverride.bytes = oldSet, oldBytes
	}
}

// AvailableMemory is how many bytes the process can still allocate, and where the figure
// comes from: the override (SetAvailableMemory, then MemoryLimitEnv); on Linux the smaller
// of MemAvailable (/proc/meminfo) and the room left under the process's cgroup memory
// limits (v2 and v1, every level up to the root); elsewhere a fallback of 128 TiB.
func AvailableMemory() (int64, string, error) {
	memoryOverride.Lock()
	set, n := memoryOverride.set, memoryOverride.bytes
	memoryOverride.Unlock()
	if set {
		return n, "runtime.SetAvailableMemory", nil
	}
	if s, ok := os.LookupEnv(MemoryLimitEnv); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < 0 {
			return 0, "", fmt.Errorf("runtime: %s=%q is not a number of bytes", MemoryLimitEnv, s)
		}
		return n, MemoryLimitEnv, nil
	}
	if n, source, ok := systemAvailable(); ok {
		return n, source, nil
	}
	return fallbackMemory, "the fallback limit of a 47-bit address space (the available memory is not measured on this system)", nil
}

// CheckMemory refuses a plan of need bytes that the available memory cannot hold; what
// names the plan in the error ("model ViT: 1234 bytes of activations and weights").
func CheckMemory(what string, need int64) error {
	have, source, err := AvailableMemory()
	if err != nil {
		return err
	}
	if need > have {
		return fmt.Errorf("%s needs %d bytes (%s), but only %d bytes (%s) are available (%s); set %s to override", what, need, humanBytes(need), have, humanBytes(have), source, MemoryLimitEnv)
	}
	return nil
}

// humanBytes writes n in binary units, for messages.
func humanBytes(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// linuxAvailable measures the available memory from the files of a Linux system under root
// ("/" for the real one; a directory of fake files in tests).
func linuxAvailable(root string) (int64, string, bool) {
	avail, ok := memAvailable(path.Join(root, "proc/meminfo"))
	if !ok {
		return 0, "", false
	}
	source := "MemAvailable of /proc/meminfo"
	if room, where, ok := cgroupRoom(root); ok && room < avail {
		avail, source = room, where
	}
	return avail, source, true
}

// memAvailable reads the MemAvailable line of /proc/meminfo, in bytes.
func memAvailable(file string) (int64, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil || kb < 0 || kb > math.MaxInt64/1024 {
				return 0, false
			}
			return kb * 1024, true
		}
	}
	return 0, false
}

// cgroupRoom is the least room (limit − usage) over the memory cgroups of the process and
// their ancestors, v2 (memory.max, memory.current) and v1 (memory.limit_in_bytes,
// memory.usage_in_bytes); false when none has a limit.
func cgroupRoom(root string) (int64, string, bool) {
	data, err := os.ReadFile(path.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, "", false
	}
	best, where, found := int64(math.MaxInt64), "", false
	// consider walks from the process's cgroup up to the root of the hierarchy mounted at
	// mount: a limit on any ancestor bounds the process too.
	consider := func(mount, cg, limitFile, usageFile string) {
		for p := path.Clean("/" + cg); ; p = path.Dir(p) {
			dir := path.Join(root, mount, p)
			if room, ok := cgroupLevel(path.Join(dir, limitFile), path.Join(dir, usageFile)); ok && room < best {
				best, where, found = room, "the cgroup limit "+path.Join("/", mount, p, limitFile), true
			}
			if p == "/" {
				return
			}
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		cg := parts[2]
		switch {
		case parts[0] == "0" && parts[1] == "":
			// v2: the unified hierarchy, mounted alone or (hybrid) under unified/.
			for _, mount := range []string{"sys/fs/cgroup", "sys/fs/cgroup/unified"} {
				consider(mount, cg, "memory.max", "memory.current")
			}
		case hasController(parts[1], "memory"):
			consider("sys/fs/cgroup/memory", cg, "memory.limit_in_bytes", "memory.usage_in_bytes")
		}
	}
	return best, where, found
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// cgroupLevel is the room under one cgroup's limit; false when the level has no files or no
// limit ("max" in v2, a page-rounded MaxInt64 in v1).
func cgroupLevel(limitFile, usageFile string) (int64, bool) {
	limit, ok := readByteCount(limitFile)
	if !ok || limit >= 1<<62 {
		return 0, false
	}
	usage, ok := readByteCount(usageFile)
	if !ok {
		usage = 0
	}
	return max(limit-usage, 0), true
}

func readByteCount(file string) (int64, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return math.MaxInt64, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}
