//! Test support (feature `testing`): a throwaway `redis-server` from the system binary,
//! listening only on a Unix socket in a temporary directory, without persistence; and a
//! fresh key prefix per call, so tests sharing one server never see each other's keys.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::connection::{connect, RedisConnection};

/// A running `redis-server`, stopped when dropped (and by a watchdog if this process dies
/// first: statics are never dropped).
pub struct TestRedis {
    child: Mutex<Child>,
    bin: PathBuf,
    dir: tempfile::TempDir,
    url: String,
}

static SHARED: OnceLock<TestRedis> = OnceLock::new();
static PREFIXES: AtomicU32 = AtomicU32::new(0);

impl TestRedis {
    /// One server per test process, started on first use.
    ///
    /// # Panics
    /// When no `redis-server` binary is installed (the message says how to install it).
    pub fn shared() -> &'static TestRedis {
        SHARED.get_or_init(|| TestRedis::start().unwrap_or_else(|e| panic!("{e}")))
    }

    /// Starts a new server.
    pub fn start() -> Result<TestRedis, String> {
        let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let dir = tempfile::Builder::new()
            .prefix("leoflow-redis-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir for redis-server: {e}"))?;
        let socket = dir.path().join("redis.sock");
        let child = spawn(&bin, dir.path())?;
        let server = TestRedis {
            child: Mutex::new(child),
            url: format!("redis+unix://{}", socket.display()),
            bin,
            dir,
        };
        server.spawn_watchdog();
        server.wait_for_socket()?;
        Ok(server)
    }

    fn wait_for_socket(&self) -> Result<(), String> {
        let socket = self.dir.path().join("redis.sock");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline {
                return Err("redis-server did not open its socket within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Kills the server (every key is lost: there is no persistence), as a crash would.
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(self.dir.path().join("redis.sock"));
    }

    /// Starts the server again on the same socket, empty.
    pub fn resume(&self) -> Result<(), String> {
        let child = spawn(&self.bin, self.dir.path())?;
        *self.child.lock().unwrap_or_else(PoisonError::into_inner) = child;
        self.wait_for_socket()
    }

    /// `redis+unix:///…/redis.sock`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection under a key prefix no other call gets.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn fresh(&self) -> RedisConnection {
        let prefix = format!(
            "test-{}-{}",
            std::process::id(),
            PREFIXES.fetch_add(1, Ordering::Relaxed)
        );
        connect(&self.url, &prefix)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn spawn_watchdog(&self) {
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill {redis} 2>/dev/null; rm -rf '{dir}'",
            me = std::process::id(),
            redis = format_args!("$(cat '{}/pid')", self.dir.path().display()),
            dir = self.dir.path().display(),
        );
        let _ = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `redis-server` on `dir/redis.sock`, without persistence.
fn spawn(bin: &Path, dir: &Path) -> Result<Child, String> {
    Command::new(bin)
        .args(["--port", "0", "--unixsocket"])
        .arg(dir.join("redis.sock"))
        .args([
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {}: {e}; install it (Debian/Ubuntu: apt-get install redis-server)",
                bin.display()
            )
        })
        .inspect(|child| {
            // The watchdog kills whichever server runs now.
            let _ = std::fs::write(dir.join("pid"), child.id().to_string());
        })
}
