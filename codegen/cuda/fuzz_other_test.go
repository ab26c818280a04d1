//go:build !unix

package cuda

import "time"

func cpuTime() time.Duration { return 0 }

func loadAverage() string { return "?" }
