package grpcserver

import (
	"net"

	"google.golang.org/grpc/credentials"

	"github.com/warren-mesh/warren/framework/transport"
)

// handshakeCreds are the server's TLS credentials reporting each failed
// handshake to the process's handshake log (transport.HandshakeLog:
// throttled, counted), as the HTTPS port does. grpc-go reports them only
// through grpclog, off by default, so a caller the gRPC port refuses (no
// certificate, another CA) would leave no trace. Wrapping the credentials,
// not the listener, leaves the handshake itself to grpc-go.
type handshakeCreds struct {
	credentials.TransportCredentials
	log *transport.HandshakeLog
}

func (c handshakeCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		c.log.Failed("grpc", raw.RemoteAddr(), err)
	}
	return conn, info, err
}

// Clone keeps the reporting: grpc-go may use a clone.
func (c handshakeCreds) Clone() credentials.TransportCredentials {
	return handshakeCreds{TransportCredentials: c.TransportCredentials.Clone(), log: c.log}
}
