package dwnserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	// StartTimeout bounds one server's start when the caller's context has no deadline.
	// A start takes ~2 s on an idle 2-core machine; busy CI machines are much slower, and
	// under make test-stress a start took more than 60 s.
	StartTimeout = 3 * time.Minute
	// StopTimeout is how long Stop waits after SIGTERM before it kills the server.
	StopTimeout = 15 * time.Second
	// LogName is the server's combined stdout/stderr inside its data directory.
	LogName = "server.log"

	healthPollInterval = 50 * time.Millisecond
	exitPortInUse      = 98 // start.sh and loopback.cjs exit with this when the port is taken
	portAttempts       = 5
)

// Server is one running @web5/dwn-server.
type Server struct {
	URL     string // http://127.0.0.1:PORT (no trailing slash)
	DataDir string // working directory: dwn.sqlite, RESOLVERCACHE, server.log
	Port    int
	LogPath string

	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has exited
	exitErr  error         // valid after exited is closed
	stopOnce sync.Once
	stopErr  error
	stopping chan struct{}
	logStart int64 // where this run's lines start in LogPath
}

// StartProcess starts one server on a free 127.0.0.1 port with dir as its data directory
// (created if missing) and returns once GET /health answers. ctx bounds the start (60 s when
// it has no deadline); afterwards the server runs until Stop is called or ctx is done.
func StartProcess(ctx context.Context, dir string) (*Server, error) {
	h, err := locateHarness()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	startCtx, cancel := withStartTimeout(ctx)
	defer cancel()
	// Another process can take the port between our probe and the server's listen;
	// the server then exits with 98 and we try another port.
	var lastErr error
	for range portAttempts {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launch(startCtx, h, dir, port)
		if err == nil {
			go s.stopWhenDone(ctx)
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errPortInUse) {
			return nil, err
		}
	}
	return nil, lastErr
}

var errPortInUse = errors.New("port already in use")

// withStartTimeout bounds a start by StartTimeout unless ctx has a deadline of its own.
func withStartTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, StartTimeout)
}

// RestartProcess starts a server again on the store and port of s, which must have stopped:
// the same data directory (its SQLite store and resolver cache) and the same URL, as a server
// that was down and came back. ctx works as for StartProcess.
func RestartProcess(ctx context.Context, s *Server) (*Server, error) {
	select {
	case <-s.exited:
	default:
		return nil, fmt.Errorf("dwn-server on %s is still running; stop it before restarting it", s.URL)
	}
	h, err := locateHarness()
	if err != nil {
		return nil, err
	}
	startCtx, cancel := withStartTimeout(ctx)
	defer cancel()
	restarted, err := launch(startCtx, h, s.DataDir, s.Port)
	if err != nil {
		return nil, err
	}
	go restarted.stopWhenDone(ctx)
	return restarted, nil
}

func launch(ctx context.Context, h harness, dir string, port int) (*Server, error) {
	logPath := filepath.Join(dir, LogName)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command("bash", h.startScript(), strconv.Itoa(port), dir)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = serverProcAttr()
	var logStart int64 // the log is appended to across restarts: read only this run's lines
	if fi, err := logFile.Stat(); err == nil {
		logStart = fi.Size()
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", h.startScript(), err)
	}
	s := &Server{
		URL:      "http://127.0.0.1:" + strconv.Itoa(port),
		DataDir:  dir,
		Port:     port,
		LogPath:  logPath,
		cmd:      cmd,
		exited:   make(chan struct{}),
		stopping: make(chan struct{}),
		logStart: logStart,
	}
	go func() {
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitHealthy(ctx); err != nil {
		_ = s.Stop()
		var exit *exec.ExitError
		if errors.As(s.exitErr, &exit) && exit.ExitCode() == exitPortInUse {
			return nil, fmt.Errorf("%s: %w", s.URL, errPortInUse)
		}
		return nil, fmt.Errorf("dwn-server on %s did not become healthy after %s: %w\n--- tail of %s ---\n%s",
			s.URL, time.Since(started).Round(time.Millisecond), err, logPath, s.LogTail(40))
	}
	return s, nil
}

// waitHealthy polls GET /health until it answers 200, the process exits, or ctx ends.
func (s *Server) waitHealthy(ctx context.Context) error {
	// A probe in flight must not outlive the process (a port held by someone else may
	// accept connections and never answer).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	ticker := time.NewTicker(healthPollInterval)
	defer ticker.Stop()
	for {
		// Both: the port is bound by this process (its own log says so), and it answers.
		// /health alone may be another process's server that took the port in the race
		// between our probe and the listen; this one then exits with 98.
		if s.bound() && healthy(ctx, client, s.URL) {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server exited: %v", s.exitErr)
		case <-ctx.Done():
			select {
			case <-s.exited:
				return fmt.Errorf("server exited: %v", s.exitErr)
			default:
				return ctx.Err()
			}
		case <-ticker.C:
		}
	}
}

// boundMarker is what loopback.cjs writes to the server's log once its port is bound.
const boundMarker = "dwn-server harness: bound "

// bound reports whether this run of the server wrote that it bound its port.
func (s *Server) bound() bool {
	f, err := os.Open(s.LogPath)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(s.logStart, io.SeekStart); err != nil {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(boundMarker)) && bytes.HasSuffix(line, []byte(":"+strconv.Itoa(s.Port))) {
			return true
		}
	}
	return false
}

func healthy(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *Server) stopWhenDone(ctx context.Context) {
	select {
	case <-ctx.Done():
		_ = s.Stop()
	case <-s.stopping:
	case <-s.exited:
	}
}

// ErrStopTimeout reports a server that did not finish its graceful stop in StopTimeout. On a
// loaded machine Node can take that long to close its sockets; it says nothing about what the
// server did while it ran.
var ErrStopTimeout = errors.New("ignored SIGTERM")

// Stop sends SIGTERM, waits for the graceful exit (killing the server after StopTimeout)
// and reports an unclean exit. Safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		close(s.stopping)
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(StopTimeout):
				_ = s.cmd.Process.Kill()
				<-s.exited
				s.stopErr = fmt.Errorf("dwn-server on %s: %w after %s and was killed", s.URL, ErrStopTimeout, StopTimeout)
				return
			}
		}
		if s.exitErr != nil {
			s.stopErr = fmt.Errorf("dwn-server on %s: %w", s.URL, s.exitErr)
		}
	})
	return s.stopErr
}

// Kill ends the server with SIGKILL, as a crash or a pulled plug would, and waits for it to be
// gone (a graceful stop waits for open WebSockets, up to StopTimeout). Stop afterwards is a
// no-op.
func (s *Server) Kill() {
	s.stopOnce.Do(func() {
		close(s.stopping)
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
}

// WebSocketURL is where MessagesSubscribe goes (the server accepts upgrades on any path).
func (s *Server) WebSocketURL() string { return "ws://127.0.0.1:" + strconv.Itoa(s.Port) }

// Exited is closed when the server process has ended (crash, Stop, or ctx done).
func (s *Server) Exited() <-chan struct{} { return s.exited }

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	return tailFile(s.LogPath, n)
}

// freePort asks the kernel for a port that is free on 127.0.0.1 right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
