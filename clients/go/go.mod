module github.com/volandoo/fluxiondb/clients/go

go 1.24

require (
	github.com/coder/websocket v1.8.15
	go.uber.org/goleak v1.3.0
)
