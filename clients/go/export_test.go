package fluxiondb

import (
	"fmt"
	"testing"
)

// Helpers for the external test package (fluxiondb_test), whose tests use
// the package only through its public API, as users do.

// MasterKeyForTest is the master key of servers started by StartServerForTest.
const MasterKeyForTest = masterKey

// StartServerForTest starts a server for the test and returns its ws:// URL.
func StartServerForTest(t testing.TB, args ...string) string {
	t.Helper()
	return startServer(t, args...).url()
}

// exampleTB lets Go examples, which have no *testing.T, start a server.
// Only the methods startServer uses are implemented; a failure panics.
type exampleTB struct {
	testing.TB
	cleanups []func()
}

func (e *exampleTB) Helper()                           {}
func (e *exampleTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (e *exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleTB) Cleanup(f func())                  { e.cleanups = append(e.cleanups, f) }

// StartExampleServer starts a server for a Go example; call stop at the end.
func StartExampleServer() (url string, stop func()) {
	e := &exampleTB{}
	url = startServer(e).url()
	return url, func() {
		for i := len(e.cleanups) - 1; i >= 0; i-- {
			e.cleanups[i]()
		}
	}
}
