//go:build race

package engine

// raceEnabled shortens the slowest randomized tests: the race detector makes them ~10x
// slower, and the concurrency tests are what -race is for.
const raceEnabled = true
