// Package web is the bot's HTTP listener (http.listen). It serves what an
// operator watches, /healthz and /metrics, to loopback peers only unless
// told otherwise, and the routes other parts add to its mux (the public
// directory of spaces).
//
// A request counts as local when its peer is a loopback address and it
// carries none of the headers a reverse proxy adds (Forwarded, RFC 7239;
// X-Forwarded-For; X-Real-IP): a proxy on the same machine that publishes
// the directory must not publish the operator's pages with it.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Options tune a Server.
type Options struct {
	// MetricsPublic serves the local routes (HandleLocal) to every peer.
	MetricsPublic bool
	// Log receives the refusals (at debug level) and server errors; nil
	// logs nothing.
	Log *slog.Logger
}

// Server is the mux of the bot's web listener. Add routes before Serve.
type Server struct {
	mux  *http.ServeMux
	opts Options
}

// New makes a server with no routes.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{mux: http.NewServeMux(), opts: opts}
}

// Handle adds a route for every peer. pattern is an http.ServeMux pattern,
// such as "GET /spaces/{id}".
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleLocal adds a route for local peers only (see the package doc),
// unless Options.MetricsPublic: for what tells how the bot runs.
func (s *Server) HandleLocal(pattern string, h http.Handler) {
	if s.opts.MetricsPublic {
		s.mux.Handle(pattern, h)
		return
	}
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Local(r) {
			s.opts.Log.Debug("web: refused a non-local peer", "path", r.URL.Path, "peer", r.RemoteAddr)
			http.Error(w, "forbidden: served to this machine only (http.metrics_public)", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// ServeHTTP dispatches to the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// Local reports whether a request comes from this machine directly: a
// loopback peer, and no proxy's forwarding header.
func Local(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// shutdownGrace is how long requests in hand may finish at shutdown.
const shutdownGrace = 5 * time.Second

// Serve serves on l until ctx is done, then lets the requests in hand
// finish (for up to 5 s) and returns nil. The server's timeouts bound what
// a slow or idle client can hold, since the public routes face anyone.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.opts.Log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: %w", err)
	}
	return nil
}
