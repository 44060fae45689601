package control

import (
	"fmt"
	"net"
	"syscall"
)

// credentials are what the kernel says of a socket's peer.
type credentials struct {
	uid uint32
	pid int32
}

// peerCred returns the credentials of the process that connected c, as the
// kernel recorded them at connect (SO_PEERCRED, socket(7)): a peer cannot
// forge them.
func peerCred(c *net.UnixConn) (credentials, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return credentials{}, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return credentials{}, err
	}
	if serr != nil {
		return credentials{}, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	return credentials{uid: cred.Uid, pid: cred.Pid}, nil
}
