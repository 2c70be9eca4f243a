// Package pgtest starts a real, throwaway PostgreSQL server for tests
// (DESIGN.md §9: "tests start a real PostgreSQL server … there are no mocks
// of the database").
//
// One server serves a whole test binary: it is started on first use with
// initdb in a temporary directory (as the postgres user when the tests run
// as root, through runuser), listens on a free loopback port only, and is
// stopped and removed by Main when the tests end. Each test gets a fresh
// database owned by a fresh login role with its own password (New), so
// tests never see each other's rows and can grant and revoke rights.
// A machine without PostgreSQL fails the test with a hint (make postgres
// installs Debian's package); it never skips.
//
// A package that uses pgtest runs its tests through it:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// or, when TestMain runs them through another helper,
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Around(func() int { return webtest.Main(m, 200) })) }
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Hint is what a test failing for want of PostgreSQL tells the reader.
const Hint = "install PostgreSQL with 'make postgres' (apt-get install -y postgresql): tests need a real server, never a mock"

var (
	inMain  atomic.Bool
	once    sync.Once
	srv     *server
	srvErr  error
	counter atomic.Int64
)

// Main runs m's tests and then stops and removes the server, if a test
// started one, and exits. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Around(m.Run)) }

// Around is Main for a TestMain that runs its tests through another
// helper: it calls run (which calls m.Run), stops the server and returns
// the exit code.
func Around(run func() int) int {
	inMain.Store(true)
	code := run()
	if srv != nil {
		if err := srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Role is a login role of the test server.
type Role struct{ Name, Password string }

// DB is a fresh database of the test server, owned by Owner.
type DB struct {
	Name  string
	Owner Role
	s     *server
}

// URL is the DSN that reaches the database as its owner.
func (d *DB) URL() string { return d.URLAs(d.Owner) }

// URLAs is the DSN that reaches the database as r.
func (d *DB) URLAs(r Role) string { return d.s.url(r, d.Name) }

// Addr is the server's host:port.
func (d *DB) Addr() string { return d.s.addr() }

// Exec runs sql as the superuser in the database, for grants and checks a
// test's roles may not do themselves.
func (d *DB) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if err := d.s.exec(d.Name, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// Outage makes the database unreachable, as a dead server would be for
// it: no new connections are allowed and the open ones are ended, until
// restore is called (also at the end of the test).
func (d *DB) Outage(t testing.TB) (restore func()) {
	t.Helper()
	if err := d.s.exec("postgres", "ALTER DATABASE "+d.Name+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatalf("pgtest: outage: %v", err)
	}
	if err := d.s.exec("postgres", `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, d.Name); err != nil {
		t.Fatalf("pgtest: outage: %v", err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := d.s.exec("postgres", "ALTER DATABASE "+d.Name+" ALLOW_CONNECTIONS true"); err != nil {
				t.Errorf("pgtest: restore: %v", err)
			}
		})
	}
	t.Cleanup(restore)
	return restore
}

// ServerDown stops the whole server as a crash would (pg_ctl stop -m
// immediate): every connection breaks and none is accepted, for every
// database of the test binary, so a test that calls it must not run in
// parallel with other tests of the binary that use pgtest. up starts the
// server again on the same port, with everything committed before the
// crash (also at the end of the test).
func (d *DB) ServerDown(t testing.TB) (up func()) {
	t.Helper()
	if err := d.s.crash(); err != nil {
		t.Fatalf("pgtest: server down: %v", err)
	}
	var once sync.Once
	up = func() {
		once.Do(func() {
			if err := d.s.listenOn(d.s.port); err != nil {
				t.Errorf("pgtest: server up again: %v", err)
			}
		})
	}
	t.Cleanup(up)
	return up
}

// NewRole creates a login role with a random password and no rights beyond
// PUBLIC's; it is dropped when the test ends.
func (d *DB) NewRole(t testing.TB) Role {
	t.Helper()
	r := newRole()
	if err := d.s.exec("postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", r.Name, r.Password)); err != nil {
		t.Fatalf("pgtest: create role: %v", err)
	}
	t.Cleanup(func() {
		// Objects the role was granted go with it; the database is dropped first.
		d.s.exec(d.Name, "DROP OWNED BY "+r.Name)
		d.s.exec("postgres", "DROP ROLE IF EXISTS "+r.Name)
	})
	return r
}

// New returns a fresh database, owned by a fresh role, dropped with its
// role when the test ends. The first call in a test binary starts the
// server; Main must be the binary's TestMain.
func New(t testing.TB) *DB {
	t.Helper()
	if !inMain.Load() {
		t.Fatal("pgtest: the package's TestMain must run its tests through pgtest.Main or pgtest.Around, which stop the server")
	}
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
	d := &DB{Name: fmt.Sprintf("t%d", counter.Add(1)), Owner: newRole(), s: srv}
	if err := srv.createDB(d.Name, d.Owner); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.dropDB(d.Name)
		srv.exec("postgres", "DROP ROLE IF EXISTS "+d.Owner.Name)
	})
	return d
}

// createDB creates the login role owner and the database name it owns.
func (s *server) createDB(name string, owner Role) error {
	for _, q := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", owner.Name, owner.Password),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, owner.Name),
		// Only roles granted CONNECT reach the database.
		fmt.Sprintf("REVOKE ALL ON DATABASE %s FROM PUBLIC", name),
	} {
		if err := s.exec("postgres", q); err != nil {
			return fmt.Errorf("pgtest: %s: %w", strings.SplitN(q, " PASSWORD", 2)[0], err)
		}
	}
	return nil
}

func newRole() Role {
	return Role{Name: fmt.Sprintf("r%d", counter.Add(1)), Password: randomHex()}
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// server is one running cluster.
type server struct {
	dir, bin string
	port     int
	password string // the superuser's
	asUser   []string
	mu       sync.Mutex
	conns    map[string]*pgx.Conn // superuser connections by database
	durable  bool                 // fsync on (Durable)
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *server) url(r Role, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(r.Name, r.Password), Host: s.addr(), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// exec runs one statement as the superuser in db.
func (s *server) exec(db, sql string, args ...any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for try := 0; ; try++ {
		c := s.conns[db]
		if c == nil || c.IsClosed() {
			var err error
			if c, err = pgx.Connect(ctx, s.url(Role{"postgres", s.password}, db)); err != nil {
				return err
			}
			s.conns[db] = c
		}
		_, err := c.Exec(ctx, sql, args...)
		if err != nil && c.IsClosed() && try == 0 {
			// An outage ended this connection: connect again once.
			delete(s.conns, db)
			continue
		}
		return err
	}
}

// dropDB drops a test's database, closing the superuser's connection into it first.
func (s *server) dropDB(name string) error {
	s.mu.Lock()
	if c := s.conns[name]; c != nil {
		c.Close(context.Background())
		delete(s.conns, name)
	}
	s.mu.Unlock()
	return s.exec("postgres", fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
}

// binDir finds the directory of initdb and pg_ctl: PATH first, then
// Debian's /usr/lib/postgresql/VERSION/bin, newest version first.
func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL not found: no pg_ctl and initdb on PATH or in /usr/lib/postgresql/*/bin; " + Hint)
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// prefix names the temp directories of pgtest clusters.
const prefix = "orderseal-pgtest-"

func start(opts ...Option) (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	sweep(bin)
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, bin: bin, password: randomHex(), conns: map[string]*pgx.Conn{}}
	for _, o := range opts {
		o(s)
	}
	if err := s.initdb(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A port picked free may be taken by another test binary before the
	// server binds it: try a few.
	for try := 0; ; try++ {
		if err = s.listen(); err == nil {
			return s, nil
		}
		if try == 4 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// initdb creates the cluster in s.dir/data, owned by the postgres user when
// running as root (initdb refuses root).
func (s *server) initdb() error {
	if err := os.WriteFile(filepath.Join(s.dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "pwfile"), []byte(s.password+"\n"), 0o600); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root and there is no postgres user to run the server as (%v); %s", err, Hint)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{s.dir, filepath.Join(s.dir, "pwfile")} {
			if err := os.Chown(p, uid, gid); err != nil {
				return err
			}
		}
		s.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	out, err := s.run("initdb", "-D", s.data(), "-U", "postgres", "--pwfile", filepath.Join(s.dir, "pwfile"),
		"--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	os.Remove(filepath.Join(s.dir, "pwfile"))
	if err != nil {
		return fmt.Errorf("initdb: %v: %s", err, lastLines(out))
	}
	return nil
}

func (s *server) data() string { return filepath.Join(s.dir, "data") }

// run runs a PostgreSQL program as the cluster's user.
func (s *server) run(prog string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, s.asUser...), filepath.Join(s.bin, prog)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

// listen starts the server on a free loopback port, tuned for tests: no
// fsync (a test cluster is thrown away), no Unix socket. Commits do write
// their WAL before they return (synchronous_commit stays on; without fsync
// that is a write into the page cache), so a server stopped as a crash
// would (ServerDown) keeps every commit it acknowledged.
func (s *server) listen() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return s.listenOn(port)
}

// listenOn starts the server on port.
func (s *server) listenOn(port int) error {
	s.port = port
	opts := strings.Join([]string{
		"-p " + strconv.Itoa(s.port),
		"-c listen_addresses=127.0.0.1",
		"-c unix_socket_directories=''",
		"-c max_connections=200", "-c shared_buffers=32MB",
	}, " ")
	if !s.durable {
		opts += " -c fsync=off -c full_page_writes=off"
	}
	out, err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", s.data(), "-l", filepath.Join(s.dir, "server.log"), "-o", opts)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %v: %s %s", err, lastLines(out), lastLines(log))
	}
	return nil
}

// crash stops the server without a shutdown checkpoint, as a power cut
// would; listenOn starts it again, recovering from its WAL.
func (s *server) crash() error {
	s.mu.Lock()
	for db, c := range s.conns {
		c.Close(context.Background())
		delete(s.conns, db)
	}
	s.mu.Unlock()
	if out, err := s.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", s.data()); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, lastLines(out))
	}
	return nil
}

func (s *server) stop() error {
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close(context.Background())
	}
	s.mu.Unlock()
	out, err := s.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", s.data())
	if rmErr := os.RemoveAll(s.dir); err == nil && rmErr != nil {
		return rmErr
	}
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, lastLines(out))
	}
	return nil
}

// sweep stops and removes the clusters of test binaries that died without
// running Main's cleanup (a timeout's panic, a kill): their owner.pid names
// a process that is gone.
func sweep(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue // alive, or not ours to judge
		}
		s := &server{dir: d, bin: bin, conns: map[string]*pgx.Conn{}}
		if os.Geteuid() == 0 {
			s.asUser = []string{"runuser", "-u", "postgres", "--"}
		}
		if _, err := os.Stat(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			s.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", s.data())
		}
		os.RemoveAll(d)
	}
}

// lastLines is the tail of a program's output, for an error message.
func lastLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// Server is a throwaway server for programs that are not tests, such as
// tools/stress and tools/bench: started as New starts one (initdb in a
// temporary directory, a free loopback port), and stopped and removed by
// Stop.
type Server struct{ s *server }

// Option tunes a Server.
type Option func(*server)

// Durable runs the server with fsync on, as a production server runs, so
// its figures compare with SQLite's (which syncs its commits); tests'
// servers skip fsync.
func Durable() Option { return func(s *server) { s.durable = true } }

// Start starts a throwaway server.
func Start(opts ...Option) (*Server, error) {
	s, err := start(opts...)
	if err != nil {
		return nil, err
	}
	return &Server{s: s}, nil
}

// Database is a fresh database of a Server, owned by a fresh login role.
type Database struct {
	Name  string
	Owner Role
	URL   string // reaches the database as its owner
}

// NewDatabase creates a fresh database owned by a fresh role, with no
// rights for any other role; it lasts until Stop.
func (S *Server) NewDatabase() (Database, error) {
	d := Database{Name: fmt.Sprintf("d%d", counter.Add(1)), Owner: newRole()}
	if err := S.s.createDB(d.Name, d.Owner); err != nil {
		return Database{}, err
	}
	d.URL = S.s.url(d.Owner, d.Name)
	return d, nil
}

// Stop stops the server and removes its directory.
func (S *Server) Stop() error { return S.s.stop() }

// PID is the server's postmaster process id, from the first line of its
// postmaster.pid: every backend serving a connection is its child, which
// is how tools/stress counts the server's CPU time.
func (S *Server) PID() (int, error) {
	b, err := os.ReadFile(filepath.Join(S.s.data(), "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pgtest: postmaster.pid starts with %q, not a process id", line)
	}
	return pid, nil
}
