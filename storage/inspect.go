package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"syscall"
	"time"
)

// bbolt trusts its file. A page past the end of a truncated file is mapped
// memory that faults (SIGBUS) when read, and a garbled page makes the
// goroutine in which bbolt rebuilds its free list at open (the store runs
// with NoFreelistSync) panic; neither can be recovered, so the process dies
// with a stack dump and, under systemd, restarts into the same crash. So
// before bbolt maps a file, inspect reads its structure with plain reads,
// every offset checked: the header pages, the file's length against the
// pages they claim, and every page reachable from the root. A file that
// passes cannot make bbolt read outside it.
//
// The layout read here is bbolt's file format version 2 (unchanged since
// boltdb 1.0): go.etcd.io/bbolt/internal/common, page.go and meta.go.

// The kinds of unusable store file; a *StoreError wraps one.
var (
	ErrEmpty     = errors.New("the file is empty")
	ErrTruncated = errors.New("the file is truncated")
	ErrForeign   = errors.New("the file is not a mailbot store")
	ErrDamaged   = errors.New("the file is damaged")
	// ErrReplaced: the file is an older copy of the store last used at
	// this path, or another store: a backup copied over the live store.
	ErrReplaced = errors.New("the file is not the store last used here")
	// ErrMissing: no file, but the stamp beside it says a store was
	// there: a store lost or moved is not silently replaced by a new one.
	ErrMissing = errors.New("the store file is missing")
)

// StoreError says what is wrong with the store file at Path.
type StoreError struct {
	Path   string
	Kind   error  // ErrEmpty, ErrTruncated, ErrForeign, ErrDamaged, ErrReplaced or ErrMissing
	Detail string // what was found, for the operator
}

func (e *StoreError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("store %s: %v", e.Path, e.Kind)
	}
	return fmt.Sprintf("store %s: %v: %s", e.Path, e.Kind, e.Detail)
}

func (e *StoreError) Unwrap() error { return e.Kind }

// bbolt's on-disk constants (internal/common/types.go, page.go).
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elementSize      = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64
	metaSize         = 56 // magic … txid: what the checksum that follows covers
	flagBranch       = 0x01
	flagLeaf         = 0x02
	flagMeta         = 0x04
	flagFreelist     = 0x10
	leafBucket       = 0x01
	noFreelist       = ^uint64(0)
	maxDepth         = 64 // far deeper than any real tree
)

// native is the byte order bbolt wrote the file in: the machine's own.
var native = binary.NativeEndian

// fileHeader is what the valid header page says of the file.
type fileHeader struct {
	size     int64 // the file's length
	pageSize int
	root     uint64 // root bucket's page
	freelist uint64 // noFreelist when not persisted
	pages    uint64 // high-water mark: pages 0 … pages-1 are in use
	txid     uint64 // the last committed transaction: the generation
}

// meta is one decoded header page.
type meta struct {
	magic, version, pageSize uint32
	root, freelist, pgid     uint64
	txid, checksum           uint64
	sum                      uint64 // the checksum computed over the bytes
}

func decodeMeta(page []byte) (meta, bool) {
	if len(page) < pageHeaderSize+metaSize+8 {
		return meta{}, false
	}
	b := page[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(b[:metaSize])
	return meta{
		magic: native.Uint32(b[0:]), version: native.Uint32(b[4:]), pageSize: native.Uint32(b[8:]),
		root: native.Uint64(b[16:]), freelist: native.Uint64(b[32:]), pgid: native.Uint64(b[40:]),
		txid: native.Uint64(b[48:]), checksum: native.Uint64(b[56:]), sum: h.Sum64(),
	}, true
}

// readMeta decodes the header page at pos, if the file reaches that far.
func readMeta(f *os.File, pos, size int64) (meta, error) {
	buf := make([]byte, pageHeaderSize+metaSize+8)
	if pos+int64(len(buf)) > size {
		return meta{}, nil
	}
	if _, err := f.ReadAt(buf, pos); err != nil {
		return meta{}, err
	}
	m, _ := decodeMeta(buf)
	return m, nil
}

func (m meta) valid() bool {
	return m.magic == boltMagic && m.version == boltVersion && m.checksum == m.sum
}

// boltPrefix is how every bbolt file begins: header page 0 (id 0, the meta
// flag, no elements, no overflow) and the magic number.
func boltPrefix() []byte {
	p := make([]byte, pageHeaderSize+4)
	native.PutUint16(p[8:], flagMeta)
	native.PutUint32(p[pageHeaderSize:], boltMagic)
	return p
}

// lockTimeout is how long opening waits for another process's lock, as
// bbolt's own Timeout in Open.
const lockTimeout = 2 * time.Second

// inspectFile checks the store file at path under a lock (exclusive, or
// shared to only read it), so that a writer cannot change pages under the
// walk; it returns ErrLocked when another process holds it.
func inspectFile(path string, exclusive bool) (fileHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileHeader{}, fmt.Errorf("open store %s: %w", path, err)
	}
	defer f.Close()
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for start := time.Now(); ; {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fileHeader{}, fmt.Errorf("lock store %s: %w", path, err)
		}
		if time.Since(start) > lockTimeout {
			return fileHeader{}, fmt.Errorf("open store %s: %w", path, ErrLocked)
		}
		time.Sleep(50 * time.Millisecond)
	}
	h, err := inspect(f)
	var se *StoreError
	if errors.As(err, &se) {
		se.Path = path
	}
	return h, err
}

// InUse reports whether a process holds the store file at path open (a
// daemon, a "mailbot process"): bbolt locks the file while it is open.
func InUse(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

// inspect reads f's header pages and walks every page reachable from them.
func inspect(f *os.File) (fileHeader, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileHeader{}, err
	}
	size := fi.Size()
	bad := func(kind error, format string, args ...any) (fileHeader, error) {
		return fileHeader{}, &StoreError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
	}
	if size == 0 {
		return bad(ErrEmpty, "0 bytes; a new store is made only where there is no file")
	}
	first := make([]byte, 4096)
	n, err := f.ReadAt(first, 0)
	if err != nil && err != io.EOF {
		return fileHeader{}, err
	}
	first = first[:n]
	prefix := boltPrefix()
	looksBolt := bytes.HasPrefix(first, prefix) || (len(first) < len(prefix) && bytes.HasPrefix(prefix, first))

	// The header page in use is the valid one with the later transaction.
	// Page 0 is at offset 0 and gives the page size; when it is damaged,
	// bbolt looks for page 1 at the offsets a page size can give, from
	// 1 KiB on, and so does this.
	m0, _ := decodeMeta(first)
	pageSize := int64(0)
	if m0.valid() {
		pageSize = int64(m0.pageSize)
	}
	for shift := 0; pageSize == 0 && shift <= 14; shift++ {
		m1, err := readMeta(f, int64(1024)<<shift, size)
		if err != nil {
			return fileHeader{}, err
		}
		looksBolt = looksBolt || m1.magic == boltMagic
		if m1.valid() {
			pageSize = int64(m1.pageSize)
		}
	}
	var m meta
	if pageSize > 0 {
		m1, err := readMeta(f, pageSize, size)
		if err != nil {
			return fileHeader{}, err
		}
		switch {
		case m0.valid() && (!m1.valid() || m0.txid >= m1.txid):
			m = m0
		case m1.valid():
			m = m1
		default:
			m = m0
		}
	}
	switch {
	case m.valid():
	case !looksBolt:
		return bad(ErrForeign, "not a bbolt database (%d bytes that do not start as one)", size)
	case size < pageHeaderSize+metaSize+8:
		return bad(ErrTruncated, "only %d bytes, not even its header", size)
	default:
		return bad(ErrDamaged, "both header pages are damaged (bad checksum or version)")
	}

	h := fileHeader{size: size, pageSize: int(m.pageSize), root: m.root, freelist: m.freelist, pages: m.pgid, txid: m.txid}
	if h.pageSize < 512 || h.pageSize&(h.pageSize-1) != 0 {
		return bad(ErrDamaged, "its header gives an impossible page size %d", h.pageSize)
	}
	if need := int64(h.pages) * int64(h.pageSize); h.pages < 2 || need/int64(h.pageSize) != int64(h.pages) || size < need {
		return bad(ErrTruncated, "%d bytes, but its header says its %d pages take %d", size, h.pages, int64(h.pages)*int64(h.pageSize))
	}
	w := walker{f: f, h: h, seen: make([]bool, h.pages)}
	w.seen[0], w.seen[1] = true, true
	if h.freelist != noFreelist {
		if err := w.freelistPage(h.freelist); err != nil {
			return bad(ErrDamaged, "%v", err)
		}
	}
	if _, err := w.page(h.root, 0, nil, nil); err != nil {
		return bad(ErrDamaged, "%v", err)
	}
	return h, nil
}

// walker visits the pages of one file, each at most once.
type walker struct {
	f    *os.File
	h    fileHeader
	seen []bool
}

// read returns page id and its overflow pages, after checking that they lie
// within the high-water mark and were not reached before.
func (w *walker) read(id uint64, want uint16) ([]byte, error) {
	if id < 2 || id >= w.h.pages {
		return nil, fmt.Errorf("a reference to page %d, outside its %d pages", id, w.h.pages)
	}
	if w.seen[id] {
		return nil, fmt.Errorf("page %d is reached twice", id)
	}
	ps := int64(w.h.pageSize)
	buf := make([]byte, ps)
	if _, err := w.f.ReadAt(buf, int64(id)*ps); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	if got := native.Uint64(buf); got != id {
		return nil, fmt.Errorf("page %d holds page %d", id, got)
	}
	flags := native.Uint16(buf[8:])
	if flags&want == 0 || flags&(flags-1) != 0 {
		return nil, fmt.Errorf("page %d has type %#x", id, flags)
	}
	overflow := uint64(native.Uint32(buf[12:]))
	if id+overflow >= w.h.pages {
		return nil, fmt.Errorf("page %d runs %d pages past its %d pages", id, id+overflow+1-w.h.pages, w.h.pages)
	}
	for i := id; i <= id+overflow; i++ {
		if w.seen[i] {
			return nil, fmt.Errorf("page %d is reached twice", i)
		}
		w.seen[i] = true
	}
	if overflow > 0 {
		buf = append(buf, make([]byte, int64(overflow)*ps)...)
		if _, err := w.f.ReadAt(buf[ps:], int64(id+1)*ps); err != nil {
			return nil, fmt.Errorf("page %d: %w", id, err)
		}
	}
	return buf, nil
}

// freelistPage checks a persisted free list: its ids must fit its pages.
func (w *walker) freelistPage(id uint64) error {
	p, err := w.read(id, flagFreelist)
	if err != nil {
		return fmt.Errorf("free list: %w", err)
	}
	start, count := pageHeaderSize, uint64(native.Uint16(p[10:]))
	if count == 0xFFFF { // the real count is the first element
		if len(p) < pageHeaderSize+8 {
			return fmt.Errorf("free list page %d is cut short", id)
		}
		count = native.Uint64(p[pageHeaderSize:])
		start += 8
	}
	if count > uint64(len(p)-start)/8 {
		return fmt.Errorf("free list page %d claims %d ids, more than it holds", id, count)
	}
	for i := range count {
		if f := native.Uint64(p[start+int(i)*8:]); f < 2 || f >= w.h.pages {
			return fmt.Errorf("free list page %d names page %d, outside its %d pages", id, f, w.h.pages)
		}
	}
	return nil
}

// page checks a branch or leaf page of the tree and everything below it.
// Its keys must lie in [lo, hi) (nil: no bound) and be in order, as bbolt's
// own walk at open demands: it panics on a key out of order, and then the
// goroutine it walks in reads on after the transaction is closed. It
// returns the greatest key below it.
func (w *walker) page(id uint64, depth int, lo, hi []byte) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("the tree is deeper than %d pages at page %d", maxDepth, id)
	}
	p, err := w.read(id, flagBranch|flagLeaf)
	if err != nil {
		return nil, err
	}
	return w.nodes(p, id, depth, lo, hi)
}

// nodes checks the elements of page p (a page of the file, or an inline
// bucket's page held in a value) and descends into what they reference.
func (w *walker) nodes(p []byte, id uint64, depth int, lo, hi []byte) ([]byte, error) {
	flags, count := native.Uint16(p[8:]), int(native.Uint16(p[10:]))
	if flags != flagBranch && flags != flagLeaf {
		return nil, fmt.Errorf("page %d has type %#x", id, flags)
	}
	if pageHeaderSize+count*elementSize > len(p) {
		return nil, fmt.Errorf("page %d claims %d elements, more than it holds", id, count)
	}
	// The keys first, each within the page.
	keys := make([][]byte, count)
	for i := range keys {
		off := pageHeaderSize + i*elementSize
		e := p[off : off+elementSize]
		pos, ksize, vsize := int64(native.Uint32(e[0:])), int64(native.Uint32(e[4:])), int64(0)
		if flags == flagLeaf {
			pos, ksize, vsize = int64(native.Uint32(e[4:])), int64(native.Uint32(e[8:])), int64(native.Uint32(e[12:]))
		}
		if int64(off)+pos+ksize+vsize > int64(len(p)) {
			return nil, fmt.Errorf("page %d: element %d runs past the page", id, i)
		}
		keys[i] = p[int64(off)+pos : int64(off)+pos+ksize]
	}
	prev, last := lo, []byte(nil)
	for i, key := range keys {
		switch {
		case i == 0 && prev != nil && bytes.Compare(prev, key) > 0:
			return nil, fmt.Errorf("page %d: its first key sorts before its place in the tree", id)
		case i > 0 && bytes.Compare(prev, key) >= 0:
			return nil, fmt.Errorf("page %d: key %d is out of order", id, i)
		case hi != nil && bytes.Compare(key, hi) >= 0:
			return nil, fmt.Errorf("page %d: key %d sorts after its place in the tree", id, i)
		}
		off := pageHeaderSize + i*elementSize
		e := p[off : off+elementSize]
		if flags == flagBranch {
			next := hi
			if i+1 < count {
				next = keys[i+1]
			}
			max, err := w.page(native.Uint64(e[8:]), depth+1, key, next)
			if err != nil {
				return nil, err
			}
			prev, last = max, max
			continue
		}
		prev, last = key, key
		if native.Uint32(e[0:])&leafBucket == 0 {
			continue
		}
		start := int64(off) + int64(native.Uint32(e[4:])) + int64(len(key))
		v := p[start : start+int64(native.Uint32(e[12:]))]
		if len(v) < bucketHeaderSize {
			return nil, fmt.Errorf("page %d: bucket %d has a short header", id, i)
		}
		if root := native.Uint64(v); root != 0 {
			if _, err := w.page(root, depth+1, nil, nil); err != nil {
				return nil, err
			}
			continue
		}
		inline := v[bucketHeaderSize:]
		if len(inline) < pageHeaderSize || native.Uint16(inline[8:]) != flagLeaf {
			return nil, fmt.Errorf("page %d: inline bucket %d is not a leaf", id, i)
		}
		if depth+1 > maxDepth {
			return nil, fmt.Errorf("the tree is deeper than %d pages at page %d", maxDepth, id)
		}
		if _, err := w.nodes(inline, id, depth+1, nil, nil); err != nil {
			return nil, err
		}
	}
	return last, nil
}
