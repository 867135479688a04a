//! A real `redis-server` on a free loopback port, owned by the test: its own directory, killed on
//! drop; without persistence ([`RedisServer::start`]) or keeping every write in an append-only file
//! fsynced at once ([`RedisServer::start_persistent`]: what it held survives a stop). [`RedisServer::stop`] and [`RedisServer::restart`] make an outage
//! (the process is killed, as by a crash) and end it on the same port; [`RedisServer::pause`]
//! makes a server that hangs.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    persistent: bool,
}

impl RedisServer {
    /// Starts `redis-server` (it must be on `PATH`: `scripts/setup.sh --test` installs it) and
    /// waits until it answers `PING`.
    pub fn start() -> anyhow::Result<Self> {
        Self::launch(false)
    }

    /// Like [`RedisServer::start`], with an append-only file fsynced on every write: a
    /// [`RedisServer::restart`] comes back with what the server held.
    pub fn start_persistent() -> anyhow::Result<Self> {
        Self::launch(true)
    }

    fn launch(persistent: bool) -> anyhow::Result<Self> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("gpt-user-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut server = Self { port, dir, child: None, persistent };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (without persistence its data is gone) and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (`SIGSTOP`): it keeps its connections and answers nothing, like a
    /// server that hangs. [`RedisServer::resume`] thaws it.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.child.as_ref().context("redis-server is not running")?.id();
        let status = Command::new("kill").args([signal, &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    /// Starts the server again on the same port (stopping it first if it runs): empty, or with
    /// what it held if persistent.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let aof: &[&str] = if self.persistent { &["--appendonly", "yes", "--appendfsync", "always"] } else { &["--appendonly", "no"] };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", ""])
            .args(aof)
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run redis-server (install it: scripts/setup.sh --test)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.answers_ping() {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                anyhow::bail!("redis-server exited at start ({status}); is port {} taken?", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        anyhow::bail!("redis-server on port {} did not answer PING within 10 s", self.port)
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
