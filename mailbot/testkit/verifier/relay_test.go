package verifier

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func packet(cmd byte, data string) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(1+len(data)))
	return append(append(p, cmd), data...)
}

// fakeMilter answers end of header with 'c' and end of message with a
// header insertion and 'a', and records how many such calls it was in at
// once.
type fakeMilter struct {
	ln            net.Listener
	inCall, most  atomic.Int32
	calls, chunks atomic.Int32
	hangUp        atomic.Bool // the next call is not answered: the connection closes
}

func startFake(t *testing.T) *fakeMilter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMilter{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeMilter) serve(c net.Conn) {
	defer c.Close()
	for {
		cmd, _, err := readPacket(c)
		if err != nil {
			return
		}
		switch cmd {
		case cmdEOH, cmdBodyEO:
			if f.hangUp.CompareAndSwap(true, false) {
				return
			}
			n := f.inCall.Add(1)
			for m := f.most.Load(); n > m && !f.most.CompareAndSwap(m, n); m = f.most.Load() {
			}
			f.calls.Add(1)
			time.Sleep(2 * time.Millisecond) // a DNS query, say
			f.inCall.Add(-1)
			if cmd == cmdBodyEO {
				c.Write(packet('i', "\x00\x00\x00\x00X-Test\x00yes\x00"))
				c.Write(packet('a', ""))
			} else {
				c.Write(packet('c', ""))
			}
		case 'B':
			f.chunks.Add(1)
			c.Write(packet('c', ""))
		}
	}
}

func TestRelaySerializes(t *testing.T) {
	f := startFake(t)
	s, err := startRelay(f.ln.Addr().String(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const sessions, messages = 6, 5
	var wg sync.WaitGroup
	for range sessions {
		wg.Go(func() {
			c, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for range messages {
				c.Write(packet(cmdEOH, ""))
				if cmd, _, err := readPacket(c); err != nil || cmd != 'c' {
					t.Errorf("end of header: %q, %v", cmd, err)
					return
				}
				c.Write(packet('B', "body"))
				if cmd, _, err := readPacket(c); err != nil || cmd != 'c' {
					t.Errorf("body: %q, %v", cmd, err)
					return
				}
				c.Write(packet(cmdBodyEO, ""))
				cmd, pkt, err := readPacket(c)
				if err != nil || cmd != 'i' || !bytes.Contains(pkt, []byte("X-Test\x00yes")) {
					t.Errorf("end of message, first reply: %q %q, %v", cmd, pkt, err)
					return
				}
				if cmd, _, err := readPacket(c); err != nil || cmd != 'a' {
					t.Errorf("end of message, final reply: %q, %v", cmd, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := f.calls.Load(); got != 2*sessions*messages {
		t.Errorf("%d calls reached the milter, want %d", got, 2*sessions*messages)
	}
	if got := f.chunks.Load(); got != sessions*messages {
		t.Errorf("%d body chunks reached the milter, want %d", got, sessions*messages)
	}
	if most := f.most.Load(); most != 1 {
		t.Errorf("the milter was in %d end-of-header or end-of-message calls at once, want 1", most)
	}
}

// A milter that hangs up in the middle of a call gives the turn back: the
// next session's call goes through.
func TestRelayReleasesOnHangUp(t *testing.T) {
	f := startFake(t)
	f.hangUp.Store(true)
	s, err := startRelay(f.ln.Addr().String(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(packet(cmdBodyEO, ""))
	if cmd, _, err := readPacket(c); err == nil {
		t.Fatalf("a reply %q from a milter that hung up", cmd)
	}
	c2, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write(packet(cmdEOH, ""))
	if cmd, _, err := readPacket(c2); err != nil || cmd != 'c' {
		t.Fatalf("the next session's end of header: %q, %v", cmd, err)
	}
}
