package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// writeTLSCert writes a fresh self-signed certificate for 127.0.0.1 and returns its files
// and a pool that trusts it.
func writeTLSCert(t *testing.T, dir, cn string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return writeTLSCertValid(t, dir, cn, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// writeTLSCertValid is writeTLSCert for a certificate valid from notBefore to notAfter.
func writeTLSCertValid(t *testing.T, dir, cn string, notBefore, notAfter time.Time) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLSServesWSS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeTLSCert(t, dir, "first")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--secret-key=tls-key", "--host=127.0.0.1", "--port=0",
			"--tls-cert=" + certFile, "--tls-key=" + keyFile}, func(string) string { return "" }, &bytes.Buffer{}, &stderr)
	}()
	addrRe := regexp.MustCompile(`msg=listening addr=(\S+)`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := addrRe.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("server did not start:\n%s", stderr.String())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	ws, _, err := websocket.Dial(dctx, "wss://"+addr+"/?api-key=tls-key", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	_, msg, err := ws.Read(dctx)
	if err != nil || string(msg) != `{"message":"Authentication successful","type":"ready"}` {
		t.Fatalf("ready frame over TLS: %q %v", msg, err)
	}
	// The container HEALTHCHECK command finds the server over TLS by itself.
	_, port, _ := net.SplitHostPort(addr)
	var hcErr bytes.Buffer
	if code := healthcheck([]string{"--port=" + port}, func(string) string { return "" }, io.Discard, &hcErr); code != 0 {
		t.Errorf("healthcheck against the TLS server: exit %d, %s", code, hcErr.String())
	}
	// Plain ws:// on the TLS port must not work.
	if _, _, err := websocket.Dial(dctx, "ws://"+addr+"/?api-key=tls-key", nil); err == nil {
		t.Fatal("plain ws:// accepted on a TLS listener")
	}
	ws.Close(websocket.StatusNormalClosure, "")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d:\n%s", code, stderr.String())
	}
}

func TestTLSCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeTLSCert(t, dir, "first")
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	leaf := func() string {
		c, _ := r.getCertificate(nil)
		x, _ := x509.ParseCertificate(c.Certificate[0])
		return x.Subject.CommonName
	}
	if leaf() != "first" {
		t.Fatalf("loaded %q", leaf())
	}
	writeTLSCert(t, dir, "second")
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	if leaf() != "second" {
		t.Fatalf("after reload %q", leaf())
	}
	// A broken file keeps the previous certificate.
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	if err := r.load(); err == nil {
		t.Fatal("garbage certificate loaded")
	}
	if leaf() != "second" {
		t.Fatalf("after failed reload %q", leaf())
	}
}

// TestTLSRefusesAnExpiredCertificate: an expired (or not yet valid) certificate is refused at
// start and on reload, which keeps the previous one: it loaded, and every client's handshake
// failed while the server logged nothing at its default level.
func TestTLSRefusesAnExpiredCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeTLSCertValid(t, dir, "old", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if _, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired certificate at start: %v, want an error saying it expired", err)
	}
	writeTLSCertValid(t, dir, "good", time.Now().Add(-time.Hour), time.Now().Add(30*24*time.Hour))
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	writeTLSCertValid(t, dir, "future", time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour))
	if err := r.load(); err == nil || !strings.Contains(err.Error(), "not valid before") {
		t.Fatalf("reload of a not-yet-valid certificate: %v", err)
	}
	c, _ := r.getCertificate(nil)
	if x, _ := x509.ParseCertificate(c.Certificate[0]); x.Subject.CommonName != "good" {
		t.Fatalf("after a refused reload the server serves %q", x.Subject.CommonName)
	}
}

func TestTLSFlagsGoTogether(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--secret-key=x", "--tls-cert=a.pem"}, func(string) string { return "" }, &bytes.Buffer{}, &stderr)
	if code != 2 || !bytes.Contains(stderr.Bytes(), []byte("--tls-cert and --tls-key go together")) {
		t.Fatalf("code %d: %s", code, stderr.String())
	}
}

// TestTLSChainInTheWrongOrderSaysSo: a chain file that starts with the CA gives the fix, not only
// "private key does not match public key" (the key does match the server's certificate).
func TestTLSChainInTheWrongOrderSaysSo(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeTLSCert(t, dir, "server")
	other, _, _ := writeTLSCert(t, t.TempDir(), "ca")
	server, _ := os.ReadFile(certFile)
	ca, _ := os.ReadFile(other)
	if err := os.WriteFile(certFile, append(ca, server...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "must come first") {
		t.Fatalf("chain in the wrong order: %v, want the hint", err)
	}
}
