package egress_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/herald-dev/herald/internal/channel/egress"
)

// These tests judge addresses without dialling them: only loopback is ever
// connected to (TestDialer), and only to show that it is refused.

func TestDefaultPolicyRefuses(t *testing.T) {
	p := egress.MustNew(nil, nil)
	for _, tc := range []struct{ addr, reason string }{
		{"127.0.0.1", "loopback"},
		{"127.1.2.3", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"10.0.0.1", "private"},
		{"10.96.0.1", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.254", "private"},
		{"192.168.1.1", "private"},
		{"fd00::1", "private (unique local)"},
		{"fc00::1", "private (unique local)"},
		{"0.0.0.0", "unspecified (\"this network\")"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"255.255.255.255", "reserved"},
		{"64:ff9b::a00:1", "NAT64 private"},
		{"2002:7f00:1::", "6to4 loopback"},
	} {
		err := p.CheckAddr(netip.MustParseAddr(tc.addr))
		var de *egress.DeniedError
		if !errors.As(err, &de) || !errors.Is(err, egress.ErrNotAllowed) {
			t.Errorf("%s: got %v, want a refusal", tc.addr, err)
			continue
		}
		if de.Reason != tc.reason {
			t.Errorf("%s: reason %q, want %q", tc.addr, de.Reason, tc.reason)
		}
		if err := p.CheckHost(tc.addr); !errors.Is(err, egress.ErrNotAllowed) {
			t.Errorf("CheckHost(%s) = %v, want a refusal", tc.addr, err)
		}
	}
}

func TestDefaultPolicyAllowsPublic(t *testing.T) {
	p := egress.MustNew(nil, nil)
	for _, a := range []string{"1.1.1.1", "8.8.8.8", "172.32.0.1", "192.169.0.1", "2606:4700::1111", "64:ff9b::101:101"} {
		if err := p.CheckAddr(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	for _, h := range []string{"hooks.example.com", "smtp.example.com"} {
		if err := p.CheckHost(h); err != nil {
			t.Errorf("CheckHost(%s) = %v", h, err)
		}
	}
	for _, h := range []string{"localhost", "LOCALHOST.", "foo.localhost"} {
		if err := p.CheckHost(h); !errors.Is(err, egress.ErrNotAllowed) {
			t.Errorf("CheckHost(%s) = %v, want a refusal", h, err)
		}
	}
}

func TestServiceRange(t *testing.T) {
	// A cluster whose service range is not a private one.
	p := egress.MustNew(nil, []string{"198.51.100.0/24"})
	err := p.CheckAddr(netip.MustParseAddr("198.51.100.10"))
	var de *egress.DeniedError
	if !errors.As(err, &de) || de.Reason != "cluster service" {
		t.Fatalf("service address: got %v", err)
	}
	if err := p.CheckAddr(netip.MustParseAddr("198.51.101.10")); err != nil {
		t.Fatalf("outside the service range: %v", err)
	}
}

func TestAllow(t *testing.T) {
	p, err := egress.New([]string{"127.0.0.0/8", "::1", "10.1.0.0/16", "relay.internal.example"}, []string{"10.1.2.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1", "127.9.9.9", "::1", "10.1.2.3"} {
		if err := p.CheckAddr(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	for _, a := range []string{"10.2.0.1", "192.168.0.1", "fe80::1"} {
		if err := p.CheckAddr(netip.MustParseAddr(a)); err == nil {
			t.Errorf("%s allowed", a)
		}
	}
	for _, h := range []string{"relay.internal.example", "Relay.Internal.Example.", "127.0.0.1", "[::1]"} {
		if !p.HostAllowed(h) {
			t.Errorf("HostAllowed(%s) = false", h)
		}
	}
	if err := p.CheckHost("localhost"); err != nil {
		t.Errorf("CheckHost(localhost) with loopback allowed: %v", err)
	}
	for _, h := range []string{"other.example", "10.2.0.1", "localhost"} {
		if p.HostAllowed(h) {
			t.Errorf("HostAllowed(%s) = true", h)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "not a host", "http://x"} {
		if _, err := egress.New([]string{bad}, nil); err == nil {
			t.Errorf("allow entry %q accepted", bad)
		}
	}
	if _, err := egress.New(nil, []string{"example.com"}); err == nil {
		t.Error("a service range that is no CIDR was accepted")
	}
}

func TestControl(t *testing.T) {
	p := egress.MustNew(nil, nil)
	for _, addr := range []string{"127.0.0.1:80", "[::1]:25", "10.0.0.1:443", "169.254.169.254:80", "[fe80::1%eth0]:80"} {
		if err := p.Control("tcp", addr, nil); !errors.Is(err, egress.ErrNotAllowed) {
			t.Errorf("Control(%s) = %v, want a refusal", addr, err)
		}
	}
	if err := p.Control("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("public address refused: %v", err)
	}
}

// TestDialer dials a loopback server: refused under the default policy,
// also when a name resolves to it, and reached when loopback is allowed.
func TestDialer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "hooks.tenant.example" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	ctx := context.Background()

	d := &egress.Dialer{Policy: egress.MustNew(nil, nil), Lookup: lookup}
	for _, addr := range []string{srv.Listener.Addr().String(), net.JoinHostPort("hooks.tenant.example", port)} {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			t.Fatalf("dial %s: connected under the default policy", addr)
		}
		if !errors.Is(err, egress.ErrNotAllowed) {
			t.Fatalf("dial %s: %v, want a refusal", addr, err)
		}
		t.Logf("dial %s: %v", addr, err)
	}

	allowed := &egress.Dialer{Policy: egress.MustNew([]string{"127.0.0.0/8", "::1"}, nil), Lookup: lookup}
	conn, err := allowed.DialContext(ctx, "tcp", net.JoinHostPort("hooks.tenant.example", port))
	if err != nil {
		t.Fatalf("dial with loopback allowed: %v", err)
	}
	conn.Close()
}
