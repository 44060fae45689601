package verifier

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
)

// Postfix reaches each milter through a relay in the test process, which
// passes every packet on unchanged, for two reasons of the test setup:
//
//   - Speed. Postfix and libmilter write their small packets without
//     TCP_NODELAY, so each waits until the one before is acknowledged, and
//     Linux delays acknowledgements by 40 ms: a message took about 100 ms
//     through the milters, against 6 ms without them. The relay has each
//     packet acknowledged at once (TCP_QUICKACK): about 10 ms.
//   - OpenDKIM's crash. OpenDKIM 2.11 (Debian 12) gives each message a
//     resolver of its own and has libunbound read ResolverConfiguration
//     for it, at end of header; that parser (flex) is not thread-safe, and
//     two messages verified at once crash OpenDKIM ("fatal flex scanner
//     internal error--end of buffer missed"). A real provider needs no
//     ResolverConfiguration (its domains are not under "test."), so the
//     tests must not suffer a crash it does not have: OpenDKIM's relay
//     serializes, letting one end-of-header or end-of-message call through
//     at a time; the other calls, on every connection, go on meanwhile.

// Milter protocol (libmilter's mfdef.h): every packet is a 4-byte
// big-endian length, then a command byte, then length-1 bytes of data.
const (
	cmdOptNeg = 'O' // option negotiation, both ways
	cmdEOH    = 'N' // end of header
	cmdBodyEO = 'E' // end of body (message)

	// protocol flag of a negotiation reply: the milter sends no reply to
	// end of header.
	flagNoReplyEOH = 0x00040000
)

// intermediate replies come before the final one of an end-of-message
// call: header, recipient and body changes, quarantine, progress.
var intermediate = map[byte]bool{'+': true, '-': true, '2': true, 'b': true, 'e': true,
	'h': true, 'i': true, 'm': true, 'q': true, 'p': true}

// relay accepts Postfix's milter connections and relays each to the
// milter at target.
type relay struct {
	ln        net.Listener
	target    string
	serialize bool       // one end-of-header or end-of-message call at a time
	turn      sync.Mutex // held by that call

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// startRelay starts a relay on a free loopback port in front of the milter
// at target.
func startRelay(target string, serialize bool) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	s := &relay{ln: ln, target: target, serialize: serialize, conns: make(map[net.Conn]bool)}
	s.wg.Go(s.accept)
	return s, nil
}

// Addr is where Postfix connects.
func (s *relay) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for their
// relays to end.
func (s *relay) Close() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *relay) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.session(c) })
	}
}

// track records an open connection, for Close; one opened after Close
// began is closed at once.
func (s *relay) track(c net.Conn, open bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case open && s.closed:
		c.Close()
	case open:
		s.conns[c] = true
	default:
		delete(s.conns, c)
	}
}

// session carries one milter session. From Postfix it forwards packet by
// packet, taking the turn (when serializing) before an end-of-header or
// end-of-message call; from the milter it forwards packet by packet, giving
// the turn back with the call's final reply. A session that ends gives it
// back too.
func (s *relay) session(mta net.Conn) {
	s.track(mta, true)
	defer s.track(mta, false)
	defer mta.Close()
	milter, err := net.Dial("tcp", s.target)
	if err != nil {
		return // Postfix sees the connection close: milter_default_action
	}
	s.track(milter, true)
	defer s.track(milter, false)
	defer milter.Close()

	var (
		waiting    = make(chan struct{}, 1) // a call holds the turn
		noReplyEOH = make(chan bool, 1)     // from the negotiation reply
		release    = func() {
			select {
			case <-waiting:
				s.turn.Unlock()
			default:
			}
		}
	)
	defer release()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer mta.Close() // ends the other direction too
		for {
			cmd, pkt, err := readPacket(milter)
			if err != nil {
				return
			}
			if cmd == cmdOptNeg && len(pkt) >= 17 {
				// version, actions, protocol flags
				select {
				case noReplyEOH <- binary.BigEndian.Uint32(pkt[13:17])&flagNoReplyEOH != 0:
				default:
				}
			}
			if _, err := mta.Write(pkt); err != nil {
				return
			}
			if !intermediate[cmd] {
				release()
			}
		}
	}()
	skipEOH := false
	for {
		cmd, pkt, err := readPacket(mta)
		if err != nil {
			break
		}
		select {
		case skipEOH = <-noReplyEOH:
		default:
		}
		if s.serialize && (cmd == cmdBodyEO || cmd == cmdEOH && !skipEOH) {
			s.turn.Lock()
			waiting <- struct{}{}
		}
		if _, err := milter.Write(pkt); err != nil {
			break
		}
	}
	milter.Close()
	<-done
}

// readPacket reads one milter packet and returns its command byte and the
// whole packet, length included.
func readPacket(c net.Conn) (byte, []byte, error) {
	quickAck(c)
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return 0, nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > 1<<20 {
		return 0, nil, errors.New("milter packet of bad size")
	}
	pkt := make([]byte, 4+size)
	copy(pkt, n[:])
	if _, err := io.ReadFull(c, pkt[4:]); err != nil {
		return 0, nil, err
	}
	return pkt[4], pkt, nil
}

// quickAck asks Linux to acknowledge what arrives next at once (tcp(7),
// TCP_QUICKACK, which lasts a while only). Postfix and libmilter write
// small packets without TCP_NODELAY: each waits for the acknowledgement of
// the one before, which a receiver that delays acknowledgements sends
// only after 40 ms, many times per message.
func quickAck(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	if rc, err := tc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1) })
	}
}
