package registry

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// CheckServerAddress checks the address of a registry server the way
// backends' clients take it: host:port, http(s)://host:port (a "/" path at
// most), or unix(s)://path. Clients accept any string and then dial it in
// vain until every request times out, naming no address ("foo:bar:baz",
// "http://[::bad"): backends refuse such a one in New and in their flags'
// Validate instead.
//
// The error never repeats addr, whose user information may be a password:
// callers name the address with redact.URL.
func CheckServerAddress(addr string) error {
	hostport := addr
	if scheme, rest, ok := strings.Cut(addr, "://"); ok {
		switch scheme {
		case "http", "https":
		case "unix", "unixs":
			if rest == "" {
				return errors.New("no socket path")
			}
			return nil
		default:
			return fmt.Errorf("scheme %q", scheme)
		}
		u, err := url.Parse(addr)
		if err != nil {
			// url.Error quotes the whole URL; its cause does not.
			if ue := (*url.Error)(nil); errors.As(err, &ue) {
				return ue.Err
			}
			return errors.New("not a URL")
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return errors.New("a path, query, fragment or user in the URL")
		}
		hostport = u.Host
	}
	if strings.Contains(hostport, "@") {
		return errors.New("a user in the address")
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		if ae := (*net.AddrError)(nil); errors.As(err, &ae) {
			return errors.New(ae.Err) // without the address it quotes
		}
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q", port)
	}
	if host == "" {
		return errors.New("no host")
	}
	return nil
}
