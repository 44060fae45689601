package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coworkingvisa/mailbot/commands"
	"github.com/coworkingvisa/mailbot/storage"
)

// Client talks to the daemon serving one store.
type Client struct {
	path string
	hc   *http.Client
}

// Dial finds the daemon serving the store at storePath. The error wraps
// ErrNoDaemon when there is no socket or nothing answers on it (the daemon
// is not running); any other error (permission denied: run as the daemon's
// user) means a daemon may be there but cannot be reached.
func Dial(storePath string) (*Client, error) {
	path := SocketPath(storePath)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s)", ErrNoDaemon, path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := dialSocket(ctx, path)
	if err != nil {
		if noListener(err) {
			return nil, fmt.Errorf("%w (%s: %v)", ErrNoDaemon, path, err)
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("control socket %s: %w (run this as the daemon's user)", path, err)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	conn.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialSocket(ctx, path)
		},
		DisableCompression: true,
		MaxIdleConns:       1,
		IdleConnTimeout:    30 * time.Second,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr}}, nil
}

// Digest asks the daemon to build digests now (see DigestFunc) and copies
// what it reports to w.
func (c *Client) Digest(ctx context.Context, space string, dryRun bool, w io.Writer) error {
	q := url.Values{"space": {space}, "dry_run": {strconv.FormatBool(dryRun)}}
	resp, err := c.do(ctx, http.MethodPost, "/digest", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("daemon (%s): %w", c.path, err)
	}
	return nil
}

// Socket is the path of the socket the client talks to.
func (c *Client) Socket() string { return c.path }

// Close releases the client's idle connection.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Response, error) {
	u := "http://mailbot" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/csv")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("daemon (%s): %w", c.path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

// responseError turns a failed response back into the error the daemon
// met, keeping ErrUnknownSpace and ErrInvalid recognisable.
func responseError(resp *http.Response) error {
	var e errorBody
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if msg == "" {
		msg = resp.Status
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		if strings.HasPrefix(msg, ErrUnknownSpace.Error()) {
			return fmt.Errorf("%w%s", ErrUnknownSpace, strings.TrimPrefix(msg, ErrUnknownSpace.Error()))
		}
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		if strings.HasPrefix(msg, ErrInvalid.Error()) {
			return fmt.Errorf("%w%s", ErrInvalid, strings.TrimPrefix(msg, ErrInvalid.Error()))
		}
		return fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	return fmt.Errorf("daemon: %s", msg)
}

// Backup writes a consistent copy of the store to w, taken by the daemon,
// and returns its size. An error means the copy in w is not whole.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, "/backup", nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	if msg := resp.Trailer.Get(trailerError); msg != "" {
		return n, fmt.Errorf("backup: daemon: %s", msg)
	}
	want, err := strconv.ParseInt(resp.Trailer.Get(trailerBytes), 10, 64)
	if err != nil || want != n {
		return n, fmt.Errorf("backup: the copy is incomplete (%d bytes received, the daemon reported %q)", n, resp.Trailer.Get(trailerBytes))
	}
	return n, nil
}

// Export writes the rosters req asks for to w; see the function Export.
func (c *Client) Export(ctx context.Context, req ExportRequest, w io.Writer) error {
	q := url.Values{}
	for k, v := range map[string]string{"space": req.Space, "format": req.Format, "status": req.Status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	resp, err := c.do(ctx, http.MethodGet, "/export", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// Import has the daemon apply a roster; see the function Import.
func (c *Client) Import(ctx context.Context, req ImportRequest) (commands.ImportReport, error) {
	if len(req.CSV) > MaxImportBytes {
		return commands.ImportReport{}, fmt.Errorf("%w: the file is larger than %d bytes", ErrInvalid, MaxImportBytes)
	}
	q := url.Values{"space": {req.Space}, "replace": {strconv.FormatBool(req.Replace)}}
	if req.Charset != "" {
		q.Set("charset", req.Charset)
	}
	if req.Filename != "" {
		q.Set("file", req.Filename)
	}
	resp, err := c.do(ctx, http.MethodPost, "/import", q, bytes.NewReader(req.CSV))
	if err != nil {
		return commands.ImportReport{}, err
	}
	defer resp.Body.Close()
	var rep commands.ImportReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return commands.ImportReport{}, fmt.Errorf("import: the daemon's report: %w", err)
	}
	return rep, nil
}

// Outbox lists the daemon's outbox; see the function Outbox.
func (c *Client) Outbox(ctx context.Context) ([]storage.OutboxItem, error) {
	resp, err := c.do(ctx, http.MethodGet, "/outbox", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var items []storage.OutboxItem
	if err := json.NewDecoder(resp.Body).Decode(&items); err != nil {
		return nil, fmt.Errorf("outbox: the daemon's answer: %w", err)
	}
	return items, nil
}

// OAuthLoginRequest is the body of POST /oauth2/login.
type OAuthLoginRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// OAuthLogin hands the daemon the refresh token of a new OAuth2 login: it
// stores it and logs in with it at once.
func (c *Client) OAuthLogin(ctx context.Context, refreshToken string) error {
	body, err := json.Marshal(OAuthLoginRequest{RefreshToken: refreshToken})
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, "/oauth2/login", nil, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Release has the daemon put a held message back in the queue; see the
// function Release.
func (c *Client) Release(ctx context.Context, id uint64) error {
	resp, err := c.do(ctx, http.MethodPost, "/outbox/release", url.Values{"id": {strconv.FormatUint(id, 10)}}, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
