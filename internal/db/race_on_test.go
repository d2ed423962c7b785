//go:build race

package db

// raceEnabled: the race detector makes sync.Pool drop items at random, so allocation counts
// mean nothing under -race; make test runs the allocation tests in a step without it.
const raceEnabled = true
