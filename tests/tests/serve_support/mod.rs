//! Shared by the `serve_*` tests: start the real `authz serve` on a free loopback port with its
//! own copy of `examples/docs`, talk HTTP/1.1 to it over a plain `TcpStream`, and kill it at the
//! end of the test.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// How long any single wait of these tests may last before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The `authz` binary built next to the test executable.
pub fn authz_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/debug/deps/serve_api-<hash> → target/debug/authz
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let binary = dir.join(format!("authz{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "`{}` is missing: run `cargo build -p authz-server` first",
        binary.display()
    );
    binary
}

/// A policy directory (a copy of `examples/docs` without its entities) and its entities file, in
/// a temporary directory removed at the end.
pub struct Fixture {
    pub temp: tempfile::TempDir,
    pub policies: PathBuf,
    pub entities: PathBuf,
}

impl Fixture {
    pub fn docs() -> Fixture {
        let temp = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/docs");
        let policies = temp.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        for entry in std::fs::read_dir(&source).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "authz") {
                std::fs::copy(&path, policies.join(path.file_name().unwrap())).unwrap();
            }
        }
        let entities = temp.path().join("entities.json");
        std::fs::copy(source.join("entities.json"), &entities).unwrap();
        Fixture {
            temp,
            policies,
            entities,
        }
    }

    /// A path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    /// Writes a policy file atomically (temporary file, then rename), as editors and deploy
    /// tools do, so that a watcher never sees it half written.
    pub fn write_policy(&self, name: &str, text: &str) {
        let temporary = self.temp.path().join(format!("{name}.partial"));
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, self.policies.join(name)).unwrap();
    }

    /// The arguments that serve this fixture on a free port.
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "serve".to_string(),
            "-p".to_string(),
            self.policies.display().to_string(),
            "-e".to_string(),
            self.entities.display().to_string(),
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
        ]
    }
}

/// A running `authz serve`, killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub address: SocketAddr,
    stderr_path: PathBuf,
}

impl Server {
    /// Starts `authz` with these arguments and waits for its `listening on http://ADDR` line.
    /// Standard error goes to `stderr_path`, shown when the server does not come up.
    pub fn start(args: &[String], stderr_path: &Path) -> Server {
        let stderr = std::fs::File::create(stderr_path).unwrap();
        let mut child = Command::new(authz_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("start authz");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        // Reads the first line, then keeps draining standard output so the server never blocks
        // on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = sender.send(first);
            for _ in lines {}
        });
        let line = receiver.recv_timeout(PATIENCE).ok().flatten();
        let Some(address) = line
            .as_deref()
            .and_then(|line| line.strip_prefix("listening on http://"))
            .and_then(|address| address.trim().parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "authz serve did not come up (first line {line:?}); its stderr:\n{}",
                std::fs::read_to_string(stderr_path).unwrap_or_default()
            );
        };
        Server {
            child: Some(child),
            address,
            stderr_path: stderr_path.to_path_buf(),
        }
    }

    /// `authz serve` on a free port with these arguments (a configuration file, a policy
    /// directory…); stderr goes to `stderr_path`.
    pub fn serve(args: &[&str], stderr_path: &Path) -> Server {
        let mut all = vec!["serve".to_string()];
        all.extend(args.iter().map(|arg| (*arg).to_string()));
        all.extend(["--listen".to_string(), "127.0.0.1:0".to_string()]);
        Server::start(&all, stderr_path)
    }

    /// Serves the fixture with extra arguments; stderr goes to `server.log` in the fixture.
    pub fn docs(fixture: &Fixture, extra: &[&str]) -> Server {
        let mut args = fixture.serve_args();
        args.extend(extra.iter().map(|arg| (*arg).to_string()));
        Server::start(&args, &fixture.path("server.log"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal by name (`TERM`, `HUP`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().ok().flatten().is_none())
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > PATIENCE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("authz serve did not exit within {PATIENCE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's diagnostic log so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        Client::new(self.address)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A minimal HTTP/1.1 client over one keep-alive connection, reconnecting when the server
/// closes it. Enough for a server that always answers with `Content-Length`.
pub struct Client {
    address: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl Client {
    pub fn new(address: SocketAddr) -> Client {
        Client {
            address,
            stream: None,
        }
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn post_json(&mut self, path: &str, body: &Json) -> Response {
        self.request("POST", path, &[], body.to_string().as_bytes())
    }

    /// `POST /v1/decide` with a request in the form of docs/language.md.
    pub fn decide(&mut self, body: &Json) -> Response {
        self.post_json("/v1/decide", body)
    }

    /// Sends one request; panics on any transport error.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    /// Sends one request over the kept-alive connection (opening one if needed).
    pub fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        if !body.is_empty()
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            head.push_str("Content-Type: application/json\r\n");
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(body);
        self.send_raw(&message)
    }

    /// Writes raw bytes and reads one response.
    pub fn send_raw(&mut self, message: &[u8]) -> std::io::Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.address, PATIENCE)?;
            stream.set_read_timeout(Some(PATIENCE))?;
            stream.set_write_timeout(Some(PATIENCE))?;
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::new(stream));
        }
        let result = self.exchange(message);
        let close = match &result {
            Ok(response) => response
                .header("connection")
                .is_some_and(|value| value.eq_ignore_ascii_case("close")),
            Err(_) => true,
        };
        if close {
            self.stream = None;
        }
        result
    }

    fn exchange(&mut self, message: &[u8]) -> std::io::Result<Response> {
        let reader = self.stream.as_mut().unwrap();
        reader.get_mut().write_all(message)?;
        let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        let mut status_line = String::new();
        if reader.read_line(&mut status_line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header {line:?}")))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let length: usize = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.parse().ok())
            .ok_or_else(|| invalid(format!("no content-length in {headers:?}")))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// A decision request in the form of docs/language.md, with an empty context.
pub fn request(principal: &str, action: &str, resource: (&str, &str)) -> Json {
    serde_json::json!({
        "principal": {"type": "User", "id": principal},
        "action": action,
        "resource": {"type": resource.0, "id": resource.1},
        "context": {},
    })
}

/// `User("dave")` reading `Document("roadmap")`: denied by the docs example (no policy applies),
/// so a test policy file can flip it either way.
pub fn dave_reads_roadmap() -> Json {
    request("dave", "read", ("Document", "roadmap"))
}

/// A policy file that decides `dave_reads_roadmap` through a policy named `id`: a permit (allow)
/// or a forbid (deny).
pub fn flip_policy(id: &str, allow: bool) -> String {
    let effect = if allow { "permit" } else { "forbid" };
    format!(
        "@id(\"{id}\")\n{effect} principal == User(\"dave\"), action: read, resource == Document(\"roadmap\");\n"
    )
}

/// A file that does not parse.
pub const BROKEN_POLICY: &str = "permit principal ==, action: read;\n";

/// The value of one sample in Prometheus text, such as
/// `authz_policy_reloads_total{result="error"}`.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no sample `{sample}` in\n{text}"))
}

/// Polls `condition` every 10 ms until it holds, failing after [`PATIENCE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `/readyz` as JSON.
pub fn readyz(client: &mut Client) -> Json {
    let response = client.get("/readyz");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// The generation of the policy set being served.
pub fn generation(client: &mut Client) -> u64 {
    readyz(client)["generation"].as_u64().unwrap()
}

/// The decision and determining policies of a 200 answer.
pub fn verdict(response: &Response) -> (String, Vec<String>) {
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    let decision = body["decision"].as_str().unwrap().to_string();
    let policies = body["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    (decision, policies)
}

/// An entity provider on loopback: `GET {prefix}/{id}` answers the entity it holds, 404
/// otherwise; `slow` answers after two seconds, `busy` after 150 ms. It counts the requests it
/// answers.
pub struct EntityService {
    pub address: SocketAddr,
    hits: Arc<AtomicUsize>,
    documents: Arc<Mutex<HashMap<String, String>>>,
}

impl EntityService {
    pub fn start(prefix: &'static str) -> EntityService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let documents: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let (counter, held) = (hits.clone(), documents.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (counter, held) = (counter.clone(), held.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let id = target
                        .strip_prefix(prefix)
                        .and_then(|rest| rest.strip_prefix('/'))
                        .unwrap_or("")
                        .to_string();
                    if id == "slow" {
                        std::thread::sleep(Duration::from_secs(2));
                    }
                    if id == "busy" {
                        std::thread::sleep(Duration::from_millis(150));
                    }
                    let found = held.lock().unwrap().get(&id).cloned();
                    let (status, body) = match found {
                        Some(body) => ("200 OK", body),
                        None => ("404 Not Found", String::new()),
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        EntityService {
            address,
            hits,
            documents,
        }
    }

    pub fn hold(&self, id: &str, answer: &Json) {
        self.documents
            .lock()
            .unwrap()
            .insert(id.to_string(), answer.to_string());
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
