//go:build !linux

package main

import "fmt"

// dropRoot: switching users at start is implemented for Linux (the Docker image) only.
func dropRoot(getenv func(string) string, data string) (string, error) {
	if getenv(runAsEnv) != "" {
		return "", fmt.Errorf("%s is supported on Linux only", runAsEnv)
	}
	return "", nil
}
