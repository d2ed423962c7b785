package main

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// certReloader serves the certificate from --tls-cert/--tls-key and loads it again on SIGHUP,
// so a renewed certificate is picked up without dropping connections: open connections keep
// their session, new handshakes get the new certificate.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu   sync.RWMutex
	cert *tls.Certificate
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) load() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
			err = fmt.Errorf("%w (read as uid %d: the files must be readable by the server's user)", err, os.Geteuid())
		}
		if pemCerts(r.certFile) > 1 && strings.Contains(err.Error(), "does not match") {
			// The key is matched against the file's first certificate only.
			err = fmt.Errorf("%w (the server's own certificate must come first in %s, then the chain)", err, r.certFile)
		}
		return fmt.Errorf("load TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	// An expired certificate loads fine and fails every client's handshake, which the server
	// only sees as clients going away: refuse it (at start, or keep the previous one).
	if leaf := cert.Leaf; leaf != nil {
		now := time.Now()
		switch {
		case now.After(leaf.NotAfter):
			return fmt.Errorf("TLS certificate %s expired on %s", r.certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(leaf.NotBefore):
			return fmt.Errorf("TLS certificate %s is not valid before %s", r.certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
		case leaf.NotAfter.Sub(now) < 14*24*time.Hour:
			r.log.Warn("TLS certificate expires soon: renew it and send SIGHUP", "cert", r.certFile,
				"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	r.mu.Lock()
	r.cert = &cert
	r.mu.Unlock()
	return nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, nil
}

// watchSIGHUP reloads the certificate on every SIGHUP until stop is closed. A failed reload
// keeps the previous certificate and logs why.
func (r *certReloader) watchSIGHUP(stop <-chan struct{}) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-stop:
			return
		case <-ch:
			if err := r.load(); err != nil {
				r.log.Error("TLS certificate reload failed; keeping the previous one", "err", err)
				continue
			}
			r.log.Info("TLS certificate reloaded", "cert", r.certFile)
		}
	}
}

func (r *certReloader) config() *tls.Config {
	return &tls.Config{GetCertificate: r.getCertificate, MinVersion: tls.VersionTLS12}
}

// pemCerts counts the CERTIFICATE blocks in a PEM file (0 when it cannot be read).
func pemCerts(path string) int {
	b, err := os.ReadFile(path)
	n := 0
	for err == nil {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			n++
		}
	}
	return n
}
