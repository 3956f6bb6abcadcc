package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// debugServer is the debug listener (WithDebugListener): its own
// http.Server and one goroutine, owned by the App, which ends on close.
type debugServer struct {
	ln     net.Listener
	srv    *http.Server
	served chan struct{}
}

func startDebug(addr string, h http.Handler, readHeader, idle time.Duration) (*debugServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener on %s: %w", addr, err)
	}
	d := &debugServer{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeader,
			IdleTimeout:       idle,
			MaxHeaderBytes:    64 << 10,
		},
		served: make(chan struct{}),
	}
	go func() {
		defer close(d.served)
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the debug listener is best effort; the service goes on
		}
	}()
	return d, nil
}

func (d *debugServer) close() {
	d.srv.Close()
	<-d.served
}

// selfCert presents the server's own certificate to a server that asks for
// one (mTLS), whatever CA names it accepts.
func selfCert(cfg *tls.Config) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		switch {
		case len(cfg.Certificates) > 0:
			return &cfg.Certificates[0], nil
		case cfg.GetCertificate != nil:
			return cfg.GetCertificate(&tls.ClientHelloInfo{})
		}
		return &tls.Certificate{}, nil
	}
}
