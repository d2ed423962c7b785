//go:build !unix

package loadtest

import "time"

// ToolCPU is unknown on this platform.
func ToolCPU() time.Duration { return 0 }
