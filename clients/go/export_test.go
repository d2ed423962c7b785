package fluxiondb

import "testing"

// Helpers for the external test package (fluxiondb_test), whose tests use
// the package only through its public API, as users do.

// MasterKeyForTest is the master key of servers started by StartServerForTest.
const MasterKeyForTest = masterKey

// StartServerForTest starts a server for the test and returns its ws:// URL.
func StartServerForTest(t testing.TB, args ...string) string {
	t.Helper()
	return startServer(t, args...).url()
}
