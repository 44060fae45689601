package itest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() { worlds = append(worlds, "fulldisk") }

// TestFullDisk puts the store on a small tmpfs, fills it to the last byte
// while commands arrive, and frees it again: nothing goes to quarantine,
// the admins are told (by a notice that needs no store write), and every
// command is carried out once and answered once the disk has room again.
func TestFullDisk(t *testing.T) {
	w := newWorld("fulldisk")
	dir, err := os.MkdirTemp("", "mailbot-full-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs for the store (needs root): %v: %s", err, out)
	}
	defer exec.Command("umount", "-l", dir).Run()
	store := filepath.Join(dir, "visa.db")
	b := startBot(t, w, store, stack.SMTPAddr)
	setup(t, w)

	// Fill the disk to the last byte.
	filler := filepath.Join(dir, "filler")
	fillDisk(t, filler)
	// Each message adds enough members that its transaction needs pages
	// the store never had: with group commit, a few small changes can
	// fit in pages freed earlier and be written on a full disk.
	for i := range 3 {
		var lines []string
		for j := range 40 {
			lines = append(lines, fmt.Sprintf("add member full%d-%d@indyhall.test", i, j))
		}
		send(t, w.alex, w.bot, thunderbird(envelope{From: w.alex, To: w.bot, Subject: fmt.Sprintf("full %d", i)},
			strings.Join(lines, "\n")))
	}
	b.waitLog("intake paused", 60*time.Second)
	notice := waitSubject(t, w.admin, "[Coworking Visa] the store cannot be written")
	mustContain(t, notice, "no space left on device")

	// Room again: intake resumes by itself and every command is answered.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := waitSubject(t, w.alex, fmt.Sprintf("Re: full %d", i))
		mustContain(t, r, fmt.Sprintf("OK: added full%d-0@indyhall.test", i))
		mustContain(t, r, fmt.Sprintf("OK: added full%d-39@indyhall.test", i))
	}
	b.waitLog("intake resumes", 10*time.Second)
	if q, err := stack.WaitForMessages(ctxT(t), w.bot, password, "Quarantine", 0); err == nil && len(q) != 0 {
		t.Errorf("%d messages in quarantine after a full disk", len(q))
	}
	b.stop()
	if n := strings.Count(b.log.String(), "message quarantined"); n != 0 {
		t.Errorf("%d messages quarantined", n)
	}
}

// fillDisk writes zeros to path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// The last bytes, one at a time.
	for {
		if _, err := f.Write(block[:1]); err != nil {
			break
		}
	}
}
