//! moto's server as a local AWS (`tests/aws/moto_server.py`: moto with two auth faults of
//! 5.2.5 patched): started on a free loopback port, killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::python;

pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
}

impl Moto {
    /// Start `moto.server` with extra environment (e.g. `INITIAL_NO_AUTH_ACTION_COUNT`).
    pub fn start(env: &[(&str, &str)]) -> Moto {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        // The server exits when its stdin closes: when the test process ends, even if
        // `Drop` never runs (the shared instance lives in a static).
        let child = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/aws/moto_server.py"
            ))
            .args([
                "--exit-on-stdin-eof",
                "--host",
                "127.0.0.1",
                "--port",
                &addr.port().to_string(),
            ])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto (is moto[server] installed? run bash tests/run.sh)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, addr }
    }

    /// One moto per test process, for the STS that every test Airlock assumes roles with
    /// (auth not enforced: any base credentials are accepted).
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| Moto::start(&[]))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
