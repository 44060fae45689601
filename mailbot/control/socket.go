// Package control is the daemon's local control socket: the operator
// commands (mailbot export, import and backup) that must work while the
// daemon runs. bbolt lets one process open the store, even read-only, so a
// second process cannot read it while the daemon holds it; instead the
// daemon answers these requests itself, over HTTP on a unix socket next to
// the store (<store.path>.sock, mode 0600, and each peer's uid checked:
// only the daemon's user, and root, may talk to it).
//
// The same operations (Export, Import, and storage.DB.Backup) are plain
// functions on an open *storage.DB, so the CLI runs them in-process when no
// daemon is running.
//
// Endpoints, for curl --unix-socket:
//
//	GET  /backup                                  a consistent copy of the store
//	GET  /export?space=ID&format=csv|json&status=active|inactive
//	POST /import?space=ID&replace=0|1&charset=NAME (body: the CSV)
//	POST /oauth2/login                            (body: {"refresh_token": …}) a new OAuth2 login
//	GET  /health
package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoDaemon is returned by Dial when no daemon answers on the store's
// control socket: the file is absent, or nothing listens on it any more.
var ErrNoDaemon = errors.New("no daemon answers on the control socket")

// SocketPath is where the daemon serving the store at storePath listens.
func SocketPath(storePath string) string { return storePath + ".sock" }

// maxSunPath is the longest path bind and connect take (sun_path is 108
// bytes on Linux, with its terminating NUL; 104 on the BSDs).
const maxSunPath = 103

// withAddr calls fn with an address for the socket at path that bind and
// connect accept. A path too long for sun_path is reached through
// /proc/self/fd of its directory (Linux), so that a deep store directory
// does not prevent the socket.
func withAddr(path string, fn func(addr string) error) error {
	if len(path) <= maxSunPath {
		return fn(path)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	addr := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	if len(addr) > maxSunPath {
		return fmt.Errorf("socket path %s is too long for a unix socket", path)
	}
	if _, err := os.Stat(filepath.Dir(addr)); err != nil {
		return fmt.Errorf("socket path %s is too long for a unix socket (%d bytes, at most %d)", path, len(path), maxSunPath)
	}
	return fn(addr)
}

// dialSocket connects to the unix socket at path.
func dialSocket(ctx context.Context, path string) (net.Conn, error) {
	var conn net.Conn
	err := withAddr(path, func(addr string) error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "unix", addr)
		return err
	})
	return conn, err
}

// noListener reports whether a dial error means nobody listens on the
// socket (a stale file left by a killed daemon) or there is no file.
func noListener(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist)
}

// Listen is ListenLog with slog.Default() as the log of refused peers.
func Listen(storePath string) (net.Listener, error) {
	return ListenLog(storePath, slog.Default())
}

// ListenLog creates the control socket of the store at storePath, mode
// 0600, and refuses (and logs to log; nil: slog.Default()) every
// connection whose peer is neither the daemon's own user nor root
// (SO_PEERCRED, see peerCred).
//
// The socket is never reachable by others, not even for an instant: it is
// bound inside a fresh directory of mode 0700 next to the store, given mode
// 0600 there, and only then renamed to its public path. (Binding it in
// place would create it with the umask's mode until a chmod, and a
// connection made in between would stay open; the umask is process-wide,
// so it is not ours to change while other goroutines create files.)
//
// A socket file left by a daemon that died is removed first; one that a
// live process still answers on is an error, as is any other file there.
// The daemon calls it only while it holds the store, so two daemons never
// compete for the socket. Closing the listener removes the file.
func ListenLog(storePath string, log *slog.Logger) (net.Listener, error) {
	path := SocketPath(storePath)
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket: %s exists and is not a socket: move it away", path)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := dialSocket(ctx, path)
		cancel()
		switch {
		case err == nil:
			conn.Close()
			return nil, fmt.Errorf("control socket: another process answers on %s", path)
		case noListener(err):
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("control socket: remove stale %s: %w", path, err)
			}
		default:
			return nil, fmt.Errorf("control socket: check %s: %w", path, err)
		}
	}
	if log == nil {
		log = slog.Default()
	}
	removeLeftovers(path)
	ul, err := bindPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	uid := uint32(os.Geteuid())
	return &listener{
		UnixListener: ul,
		path:         path,
		log:          log,
		allow:        func(peer uint32) bool { return peer == uid || peer == 0 },
	}, nil
}

// privatePattern names the directories bindPrivate makes next to path.
func privatePattern(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// bindPrivate binds a unix socket in a new 0700 directory beside path,
// makes it 0600 and renames it to path.
func bindPrivate(path string) (*net.UnixListener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), privatePattern(path)+"*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	private := filepath.Join(dir, "sock")
	var ul *net.UnixListener
	err = withAddr(private, func(addr string) error {
		l, err := net.Listen("unix", addr)
		if err != nil {
			return err
		}
		ul = l.(*net.UnixListener)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The address may be a /proc/self/fd path, and the file moves: the
	// listener removes it by its real name when closed.
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(private, 0o600); err != nil {
		ul.Close()
		return nil, err
	}
	if err := os.Rename(private, path); err != nil {
		ul.Close()
		return nil, err
	}
	return ul, nil
}

// removeLeftovers removes the private directories of a daemon killed
// between bindPrivate's mkdir and its rename.
func removeLeftovers(path string) {
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), privatePattern(path)) {
			os.RemoveAll(filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
}

// listener removes its socket file when closed.
type listener struct {
	*net.UnixListener
	path  string
	log   *slog.Logger
	allow func(uid uint32) bool // whether a peer of this uid may talk to us
	once  sync.Once
}

// Accept returns the next connection from an allowed peer. The others are
// closed at once, before a byte is read, and logged.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		cred, err := peerCred(c)
		if err == nil && l.allow(cred.uid) {
			return c, nil
		}
		if err != nil {
			l.log.Warn("control socket: connection refused: peer credentials unknown", "error", err)
		} else {
			l.log.Warn("control socket: connection refused: peer is another user",
				"peer_uid", cred.uid, "peer_pid", cred.pid, "daemon_uid", os.Geteuid())
		}
		c.Close()
	}
}

func (l *listener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { os.Remove(l.path) })
	return err
}
