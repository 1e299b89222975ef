// Package egress decides where Herald's senders may connect. A tenant
// writes the URLs and host names its providers and recipients send to, so
// without a policy a webhook could reach the cluster's own services, the
// cloud metadata endpoint or anything else on the controller's network.
//
// The policy is enforced when a connection is dialled, after DNS
// resolution: the dialer's Control function sees the address the socket is
// about to connect to, so a name that resolves (or re-resolves) to a
// refused address is refused too. Literal addresses in a provider's
// settings are also checked up front (CheckHost), so a provider that can
// never send says so in its Ready condition.
//
// By default every address that is not globally routable is refused:
// loopback, link-local, private (RFC 1918, IPv6 ULA), unspecified,
// multicast, the other special-purpose ranges below, and the cluster's
// service range when it is configured. Allow entries (CIDRs or host names)
// open exceptions; an allow entry wins over every refusal.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrNotAllowed is wrapped by every refusal of the policy.
var ErrNotAllowed = errors.New("destination not allowed by the egress policy")

// DeniedError says which address was refused and why.
type DeniedError struct {
	// Host is the name or address as configured; Addr the address it
	// resolved to (invalid when the name itself was refused).
	Host   string
	Addr   netip.Addr
	Reason string
}

func (e *DeniedError) Error() string {
	if e.Addr.IsValid() && e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("%s resolves to %s, a %s address: %v", e.Host, e.Addr, e.Reason, ErrNotAllowed)
	}
	if e.Addr.IsValid() {
		return fmt.Sprintf("%s is a %s address: %v", e.Addr, e.Reason, ErrNotAllowed)
	}
	return fmt.Sprintf("%s is %s: %v", e.Host, e.Reason, ErrNotAllowed)
}

func (e *DeniedError) Unwrap() error { return ErrNotAllowed }

// refused lists the ranges refused by default, in the order checked.
var refused = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (\"this network\")"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fc00::/7"), "private (unique local)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "private (local-use NAT64)"},
}

// Policy is an egress policy. The zero value is the default policy:
// nothing beyond globally routable addresses is allowed. A Policy is
// immutable once built and safe for concurrent use.
type Policy struct {
	allowNets  []netip.Prefix
	allowHosts map[string]bool
	deny       []netip.Prefix
}

// New builds a policy. allow lists CIDRs (or single addresses) and host
// names that may be reached even though they are refused by default;
// serviceRanges lists the cluster's service CIDRs, refused unless allowed.
func New(allow, serviceRanges []string) (*Policy, error) {
	p := &Policy{allowHosts: map[string]bool{}}
	for _, raw := range allow {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		if pfx, ok := parsePrefix(e); ok {
			p.allowNets = append(p.allowNets, pfx)
			continue
		}
		name := normalizeHost(e)
		if !validHostName(name) {
			return nil, fmt.Errorf("egress allow entry %q is neither a CIDR, an IP address nor a host name", raw)
		}
		p.allowHosts[name] = true
	}
	for _, raw := range serviceRanges {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		pfx, ok := parsePrefix(e)
		if !ok {
			return nil, fmt.Errorf("service range %q is not a CIDR", raw)
		}
		p.deny = append(p.deny, pfx)
	}
	return p, nil
}

// MustNew is New for fixed arguments; it panics on an error.
func MustNew(allow, serviceRanges []string) *Policy {
	p, err := New(allow, serviceRanges)
	if err != nil {
		panic(err)
	}
	return p
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return pfx.Masked(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// HostAllowed reports whether host (a name or a literal address) is named
// by an allow entry: a host name listed as such, or an address inside an
// allowed CIDR. Credentials may be sent to such a host without TLS.
func (p *Policy) HostAllowed(host string) bool {
	if p == nil {
		return false
	}
	h := normalizeHost(strings.Trim(host, "[]"))
	if p.allowHosts[h] {
		return true
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return p.addrAllowed(a.Unmap())
	}
	return false
}

func (p *Policy) addrAllowed(a netip.Addr) bool {
	if p == nil {
		return false
	}
	for _, pfx := range p.allowNets {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// CheckAddr returns a *DeniedError when the policy refuses a.
func (p *Policy) CheckAddr(a netip.Addr) error {
	// Prefixes never contain zoned addresses; the zone does not change
	// where a packet goes.
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return &DeniedError{Host: "an invalid address", Reason: "invalid"}
	}
	if p.addrAllowed(a) {
		return nil
	}
	if p != nil {
		for _, pfx := range p.deny {
			if pfx.Contains(a) {
				return &DeniedError{Addr: a, Reason: "cluster service"}
			}
		}
	}
	// IPv4 addresses embedded in IPv6 (NAT64 well-known prefix, 6to4) are
	// judged by the IPv4 address they lead to.
	if a.Is6() {
		b := a.As16()
		if netip.MustParsePrefix("64:ff9b::/96").Contains(a) {
			if err := p.CheckAddr(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); err != nil {
				return &DeniedError{Addr: a, Reason: "NAT64 " + err.(*DeniedError).Reason}
			}
		}
		if netip.MustParsePrefix("2002::/16").Contains(a) {
			if err := p.CheckAddr(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); err != nil {
				return &DeniedError{Addr: a, Reason: "6to4 " + err.(*DeniedError).Reason}
			}
		}
	}
	for _, r := range refused {
		if r.prefix.Contains(a) {
			return &DeniedError{Addr: a, Reason: r.reason}
		}
	}
	return nil
}

// CheckHost checks a configured host before anything is dialled: a
// literal address is checked as CheckAddr does, and "localhost" (and names
// under it) is refused unless allowed by name. Other names are checked
// when they are resolved, at dial time.
func (p *Policy) CheckHost(host string) error {
	h := normalizeHost(strings.Trim(host, "[]"))
	if p.HostAllowed(h) {
		return nil
	}
	if i := strings.IndexByte(h, '%'); i >= 0 { // IPv6 zone
		h = h[:i]
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if err := p.CheckAddr(a); err != nil {
			err.(*DeniedError).Host = host
			return err
		}
		return nil
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		// A loopback name: refused unless loopback itself is allowed.
		// What it resolves to is checked again when it is dialled.
		if p.addrAllowed(netip.MustParseAddr("127.0.0.1")) {
			return nil
		}
		return &DeniedError{Host: host, Reason: "a loopback name"}
	}
	return nil
}

// Control is a net.Dialer Control function enforcing the policy on the
// address a socket is about to connect to.
func (p *Policy) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &DeniedError{Host: address, Reason: "not an IP address"}
	}
	return p.CheckAddr(ap.Addr())
}

// Dialer dials under a policy.
type Dialer struct {
	Policy *Policy
	// Timeout and KeepAlive are those of net.Dialer.
	Timeout   time.Duration
	KeepAlive time.Duration
	// Lookup resolves host names; nil means the system resolver (which
	// net.Dialer uses on its own). Tests set it to map names to loopback.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// DialContext connects to addr ("host:port") if the policy allows it. A
// host allowed by name is dialled without checking what it resolves to;
// any other connection is checked, after resolution, by Control.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	nd := &net.Dialer{Timeout: d.Timeout, KeepAlive: d.KeepAlive}
	if d.Policy.allowHosts[normalizeHost(host)] {
		return nd.DialContext(ctx, network, addr)
	}
	nd.Control = d.Policy.Control
	if d.Lookup == nil {
		conn, err := nd.DialContext(ctx, network, addr)
		return conn, withHost(err, host)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		conn, err := nd.DialContext(ctx, network, addr)
		return conn, withHost(err, host)
	}
	addrs, err := d.Lookup(ctx, host)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: host}
	}
	var first error
	for _, a := range addrs {
		conn, err := nd.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = withHost(err, host)
		}
	}
	if first == nil {
		first = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return nil, first
}

// withHost names the configured host in a refusal, so that the message
// says which name led to the refused address.
func withHost(err error, host string) error {
	var de *DeniedError
	if errors.As(err, &de) && de.Host == "" {
		de.Host = host
	}
	return err
}
