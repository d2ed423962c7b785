package loadtest

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// TestMain doubles as a fake server for TestStartServer: with
// FLUXBENCH_FAKE_SERVER=1 the test binary serves the no-op protocol, prints
// the listening line the real server prints, and exits on SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("FLUXBENCH_FAKE_SERVER") == "1" {
		fakeServer()
		return
	}
	goleak.VerifyTestMain(m)
}

func fakeServer() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	ns, err := StartNoop(nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "time=now level=INFO msg=listening addr=%s args=%q\n", ns.URL[len("ws://"):], os.Args[1:])
	<-sig
	ns.Close()
	os.Exit(0)
}
