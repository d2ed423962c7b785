//go:build unix

package loadtest

import (
	"syscall"
	"time"
)

// ToolCPU returns the user+system CPU time of this process.
func ToolCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
