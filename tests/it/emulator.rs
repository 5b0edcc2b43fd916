//! Real AWS API servers for the integration tests, run from a venv that the harness creates under
//! cargo's target dir when missing, so `cargo test` alone works on a fresh machine that has Python
//! 3 and reaches the package registry: moto (PyPI `moto[server]`, pinned) for EC2, ELBv2, Route53
//! and SSM, and ministack (PyPI, pinned) for CloudWatch, whose current SDK speaks the Smithy RPC v2
//! CBOR protocol that moto does not parse.
//!
//! One server of each per test process, started on first use by [`moto`] / [`ministack`] and
//! shared by every test. Tests that use them hold [`exclusive`] for their whole duration and call
//! [`Server::reset`] first, so one test's state never leaks into another's.
//!
//! A server dies with the test process: it runs inside a small Python wrapper that exits as soon
//! as its stdin reaches end-of-file, and the only write end of that pipe is held by the test
//! process (statics are never dropped, so the pipe closes only when the process is gone, however
//! it ends — even SIGKILL). `PR_SET_PDEATHSIG` would not do: it fires when the *thread* that
//! spawned the child exits, and that is whichever test thread happened to call [`moto`] first.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// What each emulator's venv holds. Changing a list reinstalls that venv on the next run (the
/// marker file records it). Two venvs: ministack pins a botocore that moto would upgrade.
const MOTO_REQUIREMENTS: &[&str] = &["moto[server]==5.2.5"];
/// ministack decodes CBOR only with `cbor2`, which it does not depend on: without it, it answers
/// every CloudWatch request with an empty JSON body.
const MINISTACK_REQUIREMENTS: &[&str] = &["ministack==1.5.33", "cbor2==6.3.0"];
/// How long a started server may take to answer its first request.
const START_LIMIT: Duration = Duration::from_secs(60);
/// A setup lock older than this is left over by a process that died while installing.
const STALE_LOCK: Duration = Duration::from_secs(600);
/// How much of the server's stderr is kept for failure messages.
const LOG_TAIL: usize = 64 * 1024;

/// Runs moto's threaded server on a port the kernel picks, prints the port, and exits when stdin
/// reaches end-of-file (the test process is gone).
const MOTO_WRAPPER: &str = r#"
import os, sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.buffer.read()
os._exit(0)
"#;

/// Runs ministack on a free loopback port, prints the port, and stops it when stdin reaches
/// end-of-file. Its scratch files go to a directory of its own, removed afterwards. The port is
/// free when picked but closed again before ministack binds it: when another process takes it
/// meanwhile, ministack exits, and a new port is tried.
const MINISTACK_WRAPPER: &str = r#"
import os, shutil, socket, subprocess, sys, tempfile, time
scratch = tempfile.mkdtemp(prefix="ministack-")
exe = os.path.join(os.path.dirname(sys.executable), "ministack")

def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False

for attempt in range(5):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    # IOT_MTLS_ENABLED=0: no extra MQTT listener on 0.0.0.0:8883 beside the gateway port.
    env = dict(os.environ, GATEWAY_PORT=str(port), BIND_HOST="127.0.0.1", TMPDIR=scratch,
               IOT_MTLS_ENABLED="0")
    child = subprocess.Popen([exe], env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr)
    deadline = time.monotonic() + 60
    while child.poll() is None and not listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    if child.poll() is None:
        break
    print(f"ministack exited ({child.returncode}) on port {port}; trying another", file=sys.stderr, flush=True)
print(port, flush=True)
sys.stdin.buffer.read()
child.terminate()
try:
    child.wait(5)
except Exception:
    child.kill()
shutil.rmtree(scratch, ignore_errors=True)
os._exit(0)
"#;

/// One running emulator of this test process.
pub struct Server {
    name: &'static str,
    /// `http://127.0.0.1:PORT`, for the SDK's endpoint settings.
    pub endpoint: String,
    addr: SocketAddr,
    reset_path: &'static str,
    log: Arc<Mutex<Vec<u8>>>,
    /// Held, never written: its closing at process exit stops the server.
    _stdin: ChildStdin,
    _child: Child,
}

/// The shared moto server (EC2, ELBv2, Route53, SSM), started (and the venv set up) on first call.
pub fn moto() -> &'static Server {
    static MOTO: OnceLock<Server> = OnceLock::new();
    MOTO.get_or_init(|| {
        Server::start(
            "moto",
            MOTO_REQUIREMENTS,
            MOTO_WRAPPER,
            "/moto-api/",
            "/moto-api/reset",
        )
    })
}

/// The shared ministack server (CloudWatch), started on first call.
pub fn ministack() -> &'static Server {
    static MINISTACK: OnceLock<Server> = OnceLock::new();
    MINISTACK.get_or_init(|| {
        Server::start(
            "ministack",
            MINISTACK_REQUIREMENTS,
            MINISTACK_WRAPPER,
            "/_ministack/health",
            "/_ministack/reset",
        )
    })
}

/// Held by every test that uses the shared servers, for its whole duration, so that resets and
/// seeds of different tests never interleave. A test that panicked while holding it does not
/// poison it for the others.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Server {
    /// Forgets every resource of every service.
    pub fn reset(&self) {
        let status = http(self.addr, "POST", self.reset_path).unwrap_or_else(|e| {
            panic!(
                "resetting {} at {}: {e}\n{}",
                self.name,
                self.endpoint,
                self.log()
            )
        });
        assert!(
            is_ok(&status),
            "resetting {} at {} answered {status:?}\n{}",
            self.name,
            self.endpoint,
            self.log()
        );
    }

    /// The tail of the server's stderr (its request log and any traceback), for failure messages.
    pub fn log(&self) -> String {
        tail_text(&self.log)
    }

    fn start(
        name: &'static str,
        requirements: &[&str],
        wrapper: &str,
        ready_path: &str,
        reset_path: &'static str,
    ) -> Server {
        let python = venv_python(name, requirements);
        let started = Instant::now();
        let mut child = Command::new(&python)
            .args(["-c", wrapper])
            .env("PYTHONUNBUFFERED", "1")
            // The venv is installed without byte-code (see `venv_python`): let the server cache it.
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} with {}: {e}", python.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let log = drain(child.stderr.take().expect("piped stderr"));

        // The wrapper prints its port once the socket listens; read it on a thread so that a
        // wrapper that hangs cannot hang the tests.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(BufReader::new(stdout).read_line(&mut line).map(|_| line));
        });
        let port: u16 = match rx.recv_timeout(START_LIMIT) {
            Ok(Ok(line)) => line.trim().parse().unwrap_or_else(|_| {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{name} did not start (printed {line:?} instead of its port):\n{}",
                    tail_text(&log)
                )
            }),
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{name} did not start within {START_LIMIT:?} ({outcome:?}):\n{}",
                    tail_text(&log)
                )
            }
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));

        // Listening is not serving: wait for the first real answer.
        loop {
            match http(addr, "GET", ready_path) {
                Ok(status) if is_ok(&status) => break,
                outcome if started.elapsed() > START_LIMIT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{name} on {addr} did not answer within {START_LIMIT:?} ({outcome:?}):\n{}",
                        tail_text(&log)
                    )
                }
                _ => thread::sleep(Duration::from_millis(100)),
            }
        }
        progress(&format!(
            "{name} server on http://{addr} ready in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        Server {
            name,
            endpoint: format!("http://{addr}"),
            addr,
            reset_path,
            log,
            _stdin: stdin,
            _child: child,
        }
    }
}

/// Sends a bodiless HTTP/1.1 request and returns the response's status line.
fn http(addr: SocketAddr, method: &str, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // The whole answer is read so that closing never resets a connection the server still writes.
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    match answer.split_once("\r\n") {
        Some((status, _)) => Ok(status.to_owned()),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP answer: {answer:?}"),
        )),
    }
}

fn is_ok(status_line: &str) -> bool {
    status_line.split(' ').nth(1) == Some("200")
}

/// Keeps the last [`LOG_TAIL`] bytes of `from`, read on a thread so that the child never blocks
/// on a full pipe.
fn drain(mut from: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            let mut kept = sink.lock().unwrap_or_else(PoisonError::into_inner);
            kept.extend_from_slice(&buf[..n]);
            let excess = kept.len().saturating_sub(LOG_TAIL);
            kept.drain(..excess);
        }
    });
    log
}

fn tail_text(log: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&log.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
}

/// Written past libtest's output capture, so a long one-time setup is visible while it runs.
pub fn progress(message: &str) {
    let _ = writeln!(io::stderr(), "[emulators] {message}");
}

pub fn tmpdir() -> PathBuf {
    match option_env!("CARGO_TARGET_TMPDIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("tmp"),
    }
}

/// The interpreter of emulator `name`'s venv, with the venv created or brought up to
/// `requirements` first when needed.
fn venv_python(name: &str, requirements: &[&str]) -> PathBuf {
    let venv = tmpdir().join(format!("{name}-venv"));
    let python = if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    };
    let marker = venv.join("dake-requirements.txt");
    let wanted = requirements.join("\n") + "\n";
    let current = || python.exists() && fs::read_to_string(&marker).ok().as_ref() == Some(&wanted);
    if current() {
        return python;
    }
    let _lock = SetupLock::acquire(&venv.with_extension("lock"));
    // Another test process may have set it up while this one waited.
    if current() {
        return python;
    }

    progress(&format!(
        "setting up the AWS API emulator venv (one time): {} in {}",
        requirements.join(" "),
        venv.display()
    ));
    let started = Instant::now();
    let _ = fs::remove_file(&marker);
    let base = std::env::var_os("DAKE_TEST_PYTHON").unwrap_or_else(|| "python3".into());
    run_setup(
        Command::new(&base)
            .arg("-m")
            .arg("venv")
            .arg("--clear")
            .arg(&venv),
        &format!(
            "creating the venv with `{} -m venv`. The integration tests need Python 3 with its \
             venv module (Debian/Ubuntu: `apt-get install python3 python3-venv`); set \
             DAKE_TEST_PYTHON to use another interpreter",
            base.to_string_lossy()
        ),
    );
    // --no-compile: byte-compiling all of moto's services up front would double the install time;
    // the server caches the byte-code of the modules it imports, once, as it imports them.
    run_setup(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "--no-compile",
            ])
            .args(requirements),
        &format!(
            "installing {} with pip. The integration tests need the Python package registry \
             (PyPI, or the index that pip is configured to use) to be reachable once",
            requirements.join(" ")
        ),
    );
    fs::write(&marker, &wanted).unwrap_or_else(|e| panic!("writing {}: {e}", marker.display()));
    progress(&format!(
        "emulator venv set up in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    python
}

/// Runs one setup step to completion; panics with `what` and the step's output when it fails.
pub fn run_setup(command: &mut Command, what: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("failed {what}: could not run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "failed {what}: {command:?} exited with {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// Keeps two test processes (e.g. two `cargo test` runs) from setting up the venv at once: a
/// file created exclusively, removed when dropped (also on a panic). One left by a process that
/// died is taken over once it is [`STALE_LOCK`] old.
pub struct SetupLock(PathBuf);

impl SetupLock {
    pub fn acquire(path: &Path) -> SetupLock {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        }
        let mut told = false;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    let _ = writeln!(file, "{}", std::process::id());
                    return SetupLock(path.to_owned());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let age = fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    if age.is_some_and(|age| age > STALE_LOCK) || holder_is_gone(path) {
                        progress(&format!("taking over a stale lock {}", path.display()));
                        let _ = fs::remove_file(path);
                        continue;
                    }
                    if !told {
                        progress(&format!(
                            "waiting for another test process to set up the emulator venv \
                             (lock {})",
                            path.display()
                        ));
                        told = true;
                    }
                    thread::sleep(Duration::from_millis(500));
                }
                Err(e) => panic!("creating the lock {}: {e}", path.display()),
            }
        }
    }
}

/// Whether the process named in the lock is known to be gone (interrupted while installing).
fn holder_is_gone(path: &Path) -> bool {
    let pid = fs::read_to_string(path).ok();
    let pid = pid
        .as_deref()
        .map(str::trim)
        .and_then(|p| p.parse::<u32>().ok());
    cfg!(target_os = "linux") && pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

impl Drop for SetupLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn ministack_answers_and_resets() {
    let _guard = exclusive();
    let server = ministack();
    server.reset();
    assert!(std::ptr::eq(server, self::ministack()));
    assert!(
        !std::ptr::eq(server, moto()),
        "two servers, one per emulator"
    );
    let status = http(server.addr, "GET", "/_ministack/health").unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
}

#[test]
fn moto_server_answers_and_resets() {
    let _guard = exclusive();
    let moto = moto();
    assert!(
        moto.endpoint.starts_with("http://127.0.0.1:"),
        "{}",
        moto.endpoint
    );
    moto.reset();
    moto.reset();
    // The same server answers every caller.
    assert!(std::ptr::eq(moto, self::moto()));
    let status = http(moto.addr, "POST", "/moto-api/reset").unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
    // The request log is read from the server's stderr on a thread of its own: it may arrive
    // after the answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !moto.log().contains("/moto-api/reset") {
        assert!(Instant::now() < deadline, "{}", moto.log());
        thread::sleep(Duration::from_millis(50));
    }
}
