//go:build !linux

package control

import (
	"errors"
	"net"
)

// credentials are what the kernel says of a socket's peer.
type credentials struct {
	uid uint32
	pid int32
}

// peerCred is implemented for Linux only (SO_PEERCRED); elsewhere every
// connection is refused rather than trusted unchecked.
func peerCred(*net.UnixConn) (credentials, error) {
	return credentials{}, errors.New("peer credentials are not implemented on this system")
}
