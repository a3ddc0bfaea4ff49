//! A `provledger serve` process on a free loopback port, for the server
//! and mirror tests. Killed (SIGKILL) when dropped.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Served {
    pub child: Child,
    pub url: String,
}

impl Served {
    /// Serves the ledger in `dir` with `extra` flags; returns once the
    /// server has printed the address it listens on.
    pub fn start(dir: &Path, extra: &[&str]) -> Served {
        let args: Vec<&str> = ["serve", "--listen", "127.0.0.1:0"].into_iter().chain(extra.iter().copied()).collect();
        Served::spawn(dir, &args, Stdio::null())
    }

    /// Runs `provledger ARGS` on the ledger in `dir` (a command that listens,
    /// as `serve` and `admit` do); returns once it has printed the address.
    pub fn spawn(dir: &Path, args: &[&str], stderr: Stdio) -> Served {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("provledger"))
            .env("PROVLEDGER_DIR", dir)
            .env_remove("PROVLEDGER_SERVER")
            .env_remove("PROVLEDGER_STORE")
            .env_remove("PROVLEDGER_MIRROR")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{args:?} printed {line:?}"));
        Served { url: url.to_string(), child }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the server drains its queue and exits 0.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap();
        assert!(code.success(), "serve exited with {code:?} after SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP connection to the server at `url` from the loopback address `from`
/// (all of 127.0.0.0/8 is loopback on Linux), so that one test can stand for
/// many peers. Blocking, like a `std` stream.
pub fn connect_from(url: &str, from: std::net::Ipv4Addr) -> std::net::TcpStream {
    let addr: std::net::SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((from, 0).into())?;
            socket.connect(addr).await
        })
        .unwrap_or_else(|e| panic!("connect to {addr} from {from}: {e}"));
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Reads `stream` until the server closes it; what it sent. Panics if the
/// server has not closed it by `deadline`.
pub fn read_until_closed(stream: &mut std::net::TcpStream, deadline: std::time::Instant) -> Vec<u8> {
    use std::io::Read as _;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "the server left the connection open (it sent {:?})", String::from_utf8_lossy(&got));
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("reading from the server: {e}"),
        }
    }
}

/// Whether the server still holds `stream` open without having sent
/// anything (a read would block).
pub fn still_open(stream: &std::net::TcpStream) -> bool {
    use std::io::Read as _;
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let open = matches!((&*stream).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

/// A front for two real servers on loopback: submissions (POST) go to
/// `writes`, every read to `reads`. It stands for a server that answers
/// writers from one history and readers from another, as a lying server can.
/// Its threads end with the test process.
pub struct Split {
    pub url: String,
}

/// What a [`Split`] answers itself instead of relaying: given the method and
/// path, a status, content type and body.
pub type Answer = dyn Fn(&str, &str) -> Option<(u16, String, Vec<u8>)> + Send + Sync;

impl Split {
    pub fn start(reads: &str, writes: &str) -> Split {
        Split::answering(reads, writes, Box::new(|_, _| None))
    }

    /// A split that answers what `own` answers, and relays the rest.
    pub fn answering(reads: &str, writes: &str, own: Box<Answer>) -> Split {
        let own: std::sync::Arc<Answer> = own.into();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (reads, writes) = (reads.to_string(), writes.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (reads, writes, own) = (reads.clone(), writes.clone(), own.clone());
                std::thread::spawn(move || relay(stream, &reads, &writes, &*own));
            }
        });
        Split { url }
    }
}

/// Relays each request on `stream` to the server it goes to, until the
/// client closes it.
fn relay(stream: std::net::TcpStream, reads: &str, writes: &str, own: &Answer) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let mut input = std::io::BufReader::new(stream.try_clone()?);
    let mut output = stream;
    loop {
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut words = line.split_whitespace();
        let (method, path) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
        let mut length = 0;
        loop {
            let mut header = String::new();
            if input.read_line(&mut header)? == 0 || header == "\r\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        input.read_exact(&mut body)?;
        let (status, kind, bytes) = match own(&method, &path) {
            Some(answer) => answer,
            None => {
                let answer = if method == "POST" {
                    agent.post(format!("{writes}{path}")).header("content-type", "application/json").send(&body[..])
                } else {
                    agent.get(format!("{reads}{path}")).call()
                };
                let mut answer = answer.map_err(std::io::Error::other)?;
                let status = answer.status().as_u16();
                let kind = answer.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("text/plain");
                let kind = kind.to_string();
                let bytes =
                    answer.body_mut().with_config().limit(1 << 30).read_to_vec().map_err(std::io::Error::other)?;
                (status, kind, bytes)
            }
        };
        write!(output, "HTTP/1.1 {status} -\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\r\n", bytes.len())?;
        output.write_all(&bytes)?;
    }
}
