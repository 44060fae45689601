package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coworkingvisa/mailbot/storage"
)

// Trailers of GET /backup: the client knows a copy is whole only when the
// byte count arrives and matches what it read.
const (
	trailerBytes = "Mailbot-Backup-Bytes"
	trailerError = "Mailbot-Error"
)

// stallTimeout bounds how long one write of a backup may wait for a client
// that stopped reading (a CLI suspended with ^Z): the copy holds a read
// transaction, and a long one holds up the daemon's writes once the file
// must grow. A variable for the tests.
var stallTimeout = 30 * time.Second

// shutdownGrace is how long Serve lets requests in hand finish once its
// context is done, before it cuts their connections.
const shutdownGrace = 10 * time.Second

// DigestFunc builds digests now (of one space, or all when space is ""):
// printed to w with dryRun, else queued and listed on w.
type DigestFunc func(space string, dryRun bool, w io.Writer) error

// Hooks connect the control endpoints to the rest of a running daemon.
// Every field may be nil.
type Hooks struct {
	// Now is the clock of imports and releases (time.Now if nil).
	Now func() time.Time
	// Digest serves POST /digest (not offered when nil).
	Digest DigestFunc
	// Kick tells the outbox a message is due again (POST /outbox/release).
	Kick func()
	// OAuthLogin takes the refresh token of a new `mailbot oauth login`
	// (POST /oauth2/login); nil when the daemon does not use OAuth2.
	OAuthLogin func(refreshToken string) error
}

// NewHandler serves the control endpoints on db.
func NewHandler(db *storage.DB, hooks Hooks) http.Handler {
	now, digest, kick := hooks.Now, hooks.Digest, hooks.Kick
	if now == nil {
		now = time.Now
	}
	if kick == nil {
		kick = func() {}
	}
	mux := http.NewServeMux()
	if digest != nil {
		mux.HandleFunc("POST /digest", func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			dry, err := parseBool(q.Get("dry_run"))
			if err != nil {
				writeError(w, fmt.Errorf("%w: dry_run: %v", ErrInvalid, err))
				return
			}
			var buf strings.Builder
			if err := digest(q.Get("space"), dry, &buf); err != nil {
				writeError(w, err)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, buf.String())
		})
	}
	mux.HandleFunc("POST /oauth2/login", func(w http.ResponseWriter, r *http.Request) {
		if hooks.OAuthLogin == nil {
			writeError(w, fmt.Errorf("%w: the running daemon does not log in with OAuth2 (imap.auth and smtp.auth are password): "+
				"restart it with the new configuration first", ErrInvalid))
			return
		}
		var req OAuthLoginRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || req.RefreshToken == "" {
			writeError(w, fmt.Errorf("%w: a JSON body with a refresh_token", ErrInvalid))
			return
		}
		if err := hooks.OAuthLogin(req.RefreshToken); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"stored": true})
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "pid": os.Getpid()})
	})
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Trailer", trailerBytes+", "+trailerError)
		sw := &stallWriter{w: w, rc: http.NewResponseController(w)}
		n, err := db.Backup(sw)
		if err != nil {
			if sw.n == 0 {
				writeError(w, err)
				return
			}
			w.Header().Set(trailerError, oneLine(err.Error()))
			return
		}
		w.Header().Set(trailerBytes, strconv.FormatInt(n, 10))
	})
	mux.HandleFunc("GET /export", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := ExportRequest{Space: q.Get("space"), Format: q.Get("format"), Status: q.Get("status")}
		if err := req.check(); err != nil {
			writeError(w, err)
			return
		}
		var buf strings.Builder
		if err := Export(db, req, &buf); err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", req.ContentType())
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		io.WriteString(w, buf.String())
	})
	mux.HandleFunc("POST /import", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		replace, err := parseBool(q.Get("replace"))
		if err != nil {
			writeError(w, fmt.Errorf("%w: replace: %v", ErrInvalid, err))
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImportBytes))
		if err != nil {
			writeError(w, fmt.Errorf("read the CSV: %w", err))
			return
		}
		rep, err := Import(db, now(), ImportRequest{
			Space: q.Get("space"), CSV: data, Charset: q.Get("charset"),
			Replace: replace, Filename: q.Get("file"),
		})
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	mux.HandleFunc("GET /outbox", func(w http.ResponseWriter, r *http.Request) {
		items, err := Outbox(db)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, items)
	})
	mux.HandleFunc("POST /outbox/release", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.URL.Query().Get("id"), 10, 64)
		if err != nil {
			writeError(w, fmt.Errorf("%w: id: %v", ErrInvalid, err))
			return
		}
		if err := Release(db, id, now()); err != nil {
			writeError(w, err)
			return
		}
		kick()
		writeJSON(w, http.StatusOK, map[string]any{"released": id})
	})
	return mux
}

func parseBool(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	return strconv.ParseBool(s)
}

// errorBody is the JSON of every failed request.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, ErrUnknownSpace):
		code = http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.As(err, &tooBig):
		code = http.StatusRequestEntityTooLarge
		err = fmt.Errorf("%w: the file is larger than %d bytes", ErrInvalid, tooBig.Limit)
	}
	writeJSON(w, code, errorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// oneLine makes a message fit in a header value.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// stallWriter gives each write to a backup client stallTimeout to finish.
type stallWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	n  int64
}

func (s *stallWriter) Write(p []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(stallTimeout))
	n, err := s.w.Write(p)
	s.n += int64(n)
	return n, err
}

// Serve answers on l with h until ctx is done, then lets the requests in
// hand finish (for up to 10 seconds, then cuts them off), closes l (which
// removes the socket file) and returns nil once no handler runs any more:
// after Serve returns, the store may be closed. It returns an error only if
// the listener fails.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	t := &tracker{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !t.enter() {
				writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the daemon is stopping"})
				return
			}
			defer t.wg.Done()
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		srv.Close()
		t.closeAndWait()
		return fmt.Errorf("control socket: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	t.closeAndWait()
	return nil
}

// tracker counts the handlers running, so Serve can wait for them.
type tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (t *tracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tracker) closeAndWait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}
