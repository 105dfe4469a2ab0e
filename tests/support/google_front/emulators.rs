//! The emulators behind the front, one process of each per test binary: started on first
//! use on a free loopback port, in a temporary directory, and ready when their HTTP
//! endpoint answers `GET /` with 200 (polled, never a fixed sleep).
//!
//! Each runs under a parent that exits, stopping it, when its standard input closes: when
//! the test process ends (the shared instances live in statics, which are never dropped)
//! or when an [`Emulator`] is dropped.
//!
//! - Storage: `gcp-storage-emulator` (PyPI, pinned in tests/requirements.txt), in memory,
//!   run by the test Python.
//! - Pub/Sub and Firestore: the emulators the gcloud package carries (`gcloud emulators …
//!   start` runs the same launchers, and would leave the Java process behind when killed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an emulator may take to answer its first request.
const READY_WITHIN: Duration = Duration::from_secs(90);

pub struct Emulator {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Mutex<Child>,
    dir: tempfile::TempDir,
}

impl Emulator {
    /// Spawn `command` (which must serve HTTP on `addr`) with its output in the temporary
    /// directory `dir`, and wait until it is ready.
    fn start(
        name: &'static str,
        mut command: Command,
        addr: SocketAddr,
        dir: tempfile::TempDir,
    ) -> Emulator {
        let log = std::fs::File::create(dir.path().join("emulator.log")).expect("log file");
        let child = command
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start the {name} emulator ({command:?}): {e}"));
        let emulator = Emulator {
            name,
            addr,
            child: Mutex::new(child),
            dir,
        };
        emulator.wait_ready();
        emulator
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if answers_ok(self.addr) {
                return;
            }
            if let Ok(Some(status)) = self.child.lock().expect("child").try_wait() {
                panic!(
                    "the {} emulator exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the {} emulator was not ready on {} within {READY_WITHIN:?}:\n{}",
                self.name,
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the emulator printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let child = self.child.get_mut().expect("child");
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `GET /` answered with 200 (both kinds of emulator answer their root so).
fn answers_ok(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// The gcloud SDK's root: `CLOUDSDK_ROOT_DIR`, else the directory above the `bin/` that
/// holds the `gcloud` on PATH (following its symlink).
pub fn gcloud_sdk_root() -> PathBuf {
    if let Some(root) = std::env::var_os("CLOUDSDK_ROOT_DIR") {
        return root.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let gcloud = std::env::split_paths(&path)
        .map(|dir| dir.join("gcloud"))
        .find(|p| p.is_file())
        .expect("no gcloud on PATH: the Pub/Sub and Firestore emulators come with the gcloud CLI (package google-cloud-cli and its -pubsub-emulator, -firestore-emulator packages)");
    let real = std::fs::canonicalize(&gcloud).expect("resolve gcloud");
    real.parent()
        .and_then(|bin| bin.parent())
        .expect("gcloud lives in SDK/bin")
        .to_path_buf()
}

/// Run `program args…` under `sh`, which stops it when its standard input closes.
fn stopped_on_stdin_eof(program: &PathBuf, args: &[String]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#""$@" </dev/null & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid"#)
        .arg("sh")
        .arg(program)
        .args(args);
    command
}

/// JVM flags for a quick start and a small heap (the machine is shared).
const JAVA_OPTS: &str = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx512m";

/// The storage emulator of this test binary.
pub fn storage() -> &'static Emulator {
    static SHARED: OnceLock<Emulator> = OnceLock::new();
    SHARED.get_or_init(|| {
        let addr = free_addr();
        let dir = tempfile::tempdir().expect("tempdir");
        // In memory; the server's own thread serves while the main thread waits for EOF.
        let script = "import logging, sys\n\
             from gcp_storage_emulator.server import create_server\n\
             logging.getLogger('').setLevel(logging.CRITICAL)\n\
             server = create_server(sys.argv[1], int(sys.argv[2]), in_memory=True)\n\
             server.start()\n\
             sys.stdin.read()\n\
             server.stop()\n";
        let mut command = Command::new(super::super::python());
        command
            .arg("-c")
            .arg(script)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .env("STORAGE_BASE", dir.path());
        Emulator::start("storage", command, addr, dir)
    })
}

/// The Pub/Sub emulator of this test binary (REST over HTTP/1.1 and gRPC over h2c, one
/// port).
pub fn pubsub() -> &'static Emulator {
    static SHARED: OnceLock<Emulator> = OnceLock::new();
    SHARED.get_or_init(|| {
        let addr = free_addr();
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = gcloud_sdk_root().join("platform/pubsub-emulator/bin/cloud-pubsub-emulator");
        assert!(
            launcher.is_file(),
            "no Pub/Sub emulator at {} (install google-cloud-cli-pubsub-emulator)",
            launcher.display()
        );
        let mut command = stopped_on_stdin_eof(
            &launcher,
            &[
                format!("--host={}", addr.ip()),
                format!("--port={}", addr.port()),
            ],
        );
        command.env("JAVA_OPTS", JAVA_OPTS);
        Emulator::start("Pub/Sub", command, addr, dir)
    })
}

/// The Firestore emulator of this test binary (native mode; REST and gRPC, one port).
pub fn firestore() -> &'static Emulator {
    static SHARED: OnceLock<Emulator> = OnceLock::new();
    SHARED.get_or_init(|| {
        let addr = free_addr();
        let dir = tempfile::tempdir().expect("tempdir");
        let jar = gcloud_sdk_root()
            .join("platform/cloud-firestore-emulator/cloud-firestore-emulator.jar");
        assert!(
            jar.is_file(),
            "no Firestore emulator at {} (install google-cloud-cli-firestore-emulator)",
            jar.display()
        );
        // What the package's `cloud_firestore_emulator start` runs, without its shell (which
        // does not exec, so killing it would leave the JVM behind).
        let mut args: Vec<String> = JAVA_OPTS.split(' ').map(str::to_string).collect();
        args.extend([
            "-Duser.language=en".into(),
            "-cp".into(),
            jar.display().to_string(),
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore".into(),
            "start".into(),
            format!("--host={}", addr.ip()),
            format!("--port={}", addr.port()),
        ]);
        let command = stopped_on_stdin_eof(&PathBuf::from("java"), &args);
        Emulator::start("Firestore", command, addr, dir)
    })
}
