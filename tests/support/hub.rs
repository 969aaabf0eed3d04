//! A stand-in for the Hugging Face hub on 127.0.0.1, answering as the real hub answers its
//! clients (docs/hub.md; read from huggingface_hub, huggingface.js and transformers.js):
//! - `HEAD`/`GET /{org}/{name}/resolve/{revision}/{file}`: a small file through a relative
//!   307 to `/api/resolve-cache/models/{org}/{name}/{commit}/{file}?...&etag=...`, whose 200
//!   carries `ETag` (quoted) and `X-Repo-Commit`; a large one (the weights) through a 302 to
//!   the CDN, on a host of its own (another port), carrying `X-Linked-Etag` (its SHA-256),
//!   `X-Linked-Size` and `X-Repo-Commit`, with the redirect's own small body and length;
//! - errors as the hub sends them: an unknown (or private) repo answers 401 with no
//!   `X-Error-Code` to an anonymous request and 404 `RepoNotFound` to one with a token; a
//!   gated repo 401 `GatedRepo` anonymously and 403 `GatedRepo` to a token without access; a
//!   missing file 404 `EntryNotFound` with `X-Repo-Commit`; an unknown revision 404
//!   `RevisionNotFound`; rate-limiting 429 with `Retry-After`; an outage 503;
//! - the API's `GET /api/models/{org}/{name}/revision/{revision}` (the commit, each file's
//!   size and the large ones' SHA-256), which a browser asks instead of reading a 302's headers;
//! - a "mirror" under `/mirror/`, answering every request with a 308 to the same path on the
//!   hub's absolute URL, as a mirror in `HF_ENDPOINT` that hands over to huggingface.co does;
//! - the hub's CORS headers on every answer, so that the page can fetch from it.
//!
//! Each repo can be made to misbehave as real servers and networks do ([`Fault`]), also while
//! the server runs ([`HubServer::set_fault`]). [`CountingProxy`] is a forward and CONNECT proxy
//! on loopback that counts what goes through it. No test touches the internet.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// How a repo misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Gated: 401 `GatedRepo` without a token, 403 `GatedRepo` with another one; served to a
    /// request carrying this bearer token.
    Gated(&'static str),
    /// Private: served to this token only; to anyone else the hub answers as for a repo that
    /// does not exist.
    Private(&'static str),
    /// The weights' `X-Linked-Etag` is another file's SHA-256.
    WrongSha,
    /// `X-Linked-Size` announces more bytes than the weights have.
    WrongSize,
    /// The 302 to the CDN carries no `X-Linked-Size`.
    NoLinkedSize,
    /// The CDN sends half of the weights, then closes the connection.
    CutHalfway,
    /// The CDN sends half of the weights, then waits (a stalled network) for 30 s.
    StallHalfway,
    /// The CDN sends the weights in small pieces with a pause after each, as a slow network
    /// does: long enough to watch a progress bar.
    Slow,
    /// 429 to every request of the hub (not the CDN's), asking to retry after this many
    /// seconds.
    RateLimited(u32),
    /// 503 to every request of the hub (not the CDN's).
    Down,
}

#[derive(Clone)]
pub struct Repo {
    pub commit: String,
    pub files: BTreeMap<String, Vec<u8>>,
    pub fault: Fault,
}

impl Repo {
    /// A repo with the files of a fixture folder (`tests/fixtures/hub/ORG/NAME`).
    pub fn from_folder(dir: &Path) -> Self {
        let files = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
            .collect();
        Self::with_files(files)
    }

    /// A commit hash that changes with the content, as git's does
    /// (`tests/fixtures/make_python_hub_cache.py` computes the same one).
    pub fn with_files(files: BTreeMap<String, Vec<u8>>) -> Self {
        let mut h = Sha256::new();
        for (name, bytes) in &files {
            h.update(name.as_bytes());
            h.update(bytes);
        }
        Self {
            commit: hex(&h.finalize())[..40].to_string(),
            files,
            fault: Fault::None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// git's blob SHA-1 would name a small file; its SHA-256's first 40 digits stand in for it.
fn small_etag(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))[..40].to_string()
}

/// Files larger than this are "LFS" files, answered with a redirect to the CDN.
const LFS_FROM: usize = 10_000;

/// One request, as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Its `Authorization` header.
    pub authorization: Option<String>,
    /// Whether it came to the CDN's host.
    pub cdn: bool,
}

type Repos = Arc<Mutex<BTreeMap<String, Repo>>>;

/// A listener answering until stopped, each connection on a thread of its own.
struct Listener {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn start(handle: impl Fn(TcpStream, &str) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let thread = {
            let (stop, url) = (stop.clone(), url.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (handle, url) = (handle.clone(), url.clone());
                    std::thread::spawn(move || handle(stream, &url));
                }
            })
        };
        Self {
            url,
            stop,
            thread: Some(thread),
        }
    }

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and drops the listener.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.shut_down();
    }
}

pub struct HubServer {
    pub url: String,
    /// The CDN's base URL: another port, so another host to a client.
    pub cdn_url: String,
    repos: Repos,
    log: Arc<Mutex<Vec<Seen>>>,
    hub: Listener,
    cdn: Listener,
}

impl HubServer {
    pub fn start(repos: BTreeMap<String, Repo>) -> Self {
        let repos: Repos = Arc::new(Mutex::new(repos));
        let log = Arc::new(Mutex::new(Vec::new()));
        let cdn = {
            let (repos, log) = (repos.clone(), log.clone());
            Listener::start(move |stream, _| {
                let _ = serve_cdn(stream, &repos, &log);
            })
        };
        let hub = {
            let (repos, log, cdn_url) = (repos.clone(), log.clone(), cdn.url.clone());
            Listener::start(move |stream, url| {
                let _ = serve_hub(stream, &repos, &log, url, &cdn_url);
            })
        };
        Self {
            url: hub.url.clone(),
            cdn_url: cdn.url.clone(),
            repos,
            log,
            hub,
            cdn,
        }
    }

    /// The requests so far, as "METHOD /path", the CDN's included.
    pub fn requests(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    /// The requests so far, in full.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// Makes `repo` misbehave from now on.
    pub fn set_fault(&self, repo: &str, fault: Fault) {
        self.repos.lock().unwrap().get_mut(repo).unwrap().fault = fault;
    }

    /// Stops listening: later connections are refused, as from a machine without network.
    pub fn stop(mut self) {
        self.hub.shut_down();
        self.cdn.shut_down();
    }
}

struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Ok(Request {
        method,
        path,
        headers,
    })
}

/// The hub's CORS headers: any page may fetch, and read the headers clients need.
const CORS: &str = "Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: X-Repo-Commit, X-Error-Code, X-Error-Message, X-Linked-Etag, X-Linked-Size, ETag, Content-Length, Retry-After\r\n";

/// Writes an answer; `send_body` is false for a HEAD (its `Content-Length` is still the body's).
fn respond(
    mut stream: &TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
    send_body: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n{CORS}");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if send_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// An error answer: `code` is the `X-Error-Code` (none for the hub's anonymous 401).
fn error(
    stream: &TcpStream,
    status: &str,
    code: Option<&str>,
    extra: &[(&str, String)],
    send_body: bool,
) -> std::io::Result<()> {
    let message = match code {
        Some("GatedRepo") => {
            "Access to model is restricted. You must have access to it and be authenticated to access it."
        }
        Some("RepoNotFound") => "Repository not found",
        Some("EntryNotFound") => "Entry not found",
        Some("RevisionNotFound") => "Invalid rev id",
        _ => "Invalid username or password.",
    };
    let body = serde_json::json!({ "error": message }).to_string();
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    if let Some(code) = code {
        headers.push(("X-Error-Code", code.to_string()));
        headers.push(("X-Error-Message", message.to_string()));
    }
    headers.extend(extra.iter().cloned());
    respond(stream, status, &headers, body.as_bytes(), send_body)
}

fn log_request(log: &Mutex<Vec<Seen>>, req: &Request, cdn: bool) {
    log.lock().unwrap().push(Seen {
        method: req.method.clone(),
        path: req.path.clone(),
        authorization: req.headers.get("authorization").cloned(),
        cdn,
    });
}

/// The CDN: `/cdn/{org}/{name}/{file}`, what a 302 points at. It knows nothing of tokens.
fn serve_cdn(
    stream: TcpStream,
    repos: &Mutex<BTreeMap<String, Repo>>,
    log: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let req = read_request(&stream)?;
    log_request(log, &req, true);
    let body_too = req.method == "GET";
    let path = req.path.split('?').next().unwrap_or("");
    let rest = path.strip_prefix("/cdn/").unwrap_or("");
    let (repo_id, file) = rest.rsplit_once('/').unwrap_or((rest, ""));
    let repo = repos.lock().unwrap().get(repo_id).cloned();
    let Some((repo, bytes)) = repo.and_then(|r| r.files.get(file).cloned().map(|b| (r, b))) else {
        // A CDN's own "no such key", not the hub's.
        return respond(&stream, "404 Not Found", &[], b"NoSuchKey", body_too);
    };
    let length = [("Content-Length", bytes.len().to_string())];
    match repo.fault {
        Fault::CutHalfway | Fault::StallHalfway if body_too => {
            respond(&stream, "200 OK", &length, &bytes[..bytes.len() / 2], true)?;
            if repo.fault == Fault::StallHalfway {
                std::thread::sleep(std::time::Duration::from_secs(30));
            }
            stream.shutdown(Shutdown::Both)
        }
        Fault::Slow if body_too => {
            respond(&stream, "200 OK", &length, b"", true)?;
            let piece = bytes.len().div_ceil(40).max(1);
            for chunk in bytes.chunks(piece) {
                (&stream).write_all(chunk)?;
                (&stream).flush()?;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Ok(())
        }
        _ => respond(&stream, "200 OK", &[], &bytes, body_too),
    }
}

/// Whether `req` may read `repo`, as the hub decides it: `Err` is the refusal to send.
fn access(req: &Request, repo: &Repo) -> Result<(), (&'static str, Option<&'static str>)> {
    let auth = req.headers.get("authorization");
    let holds = |token: &str| auth == Some(&format!("Bearer {token}"));
    match repo.fault {
        Fault::Gated(token) if !holds(token) => Err(match auth {
            None => ("401 Unauthorized", Some("GatedRepo")),
            Some(_) => ("403 Forbidden", Some("GatedRepo")),
        }),
        Fault::Private(token) if !holds(token) => Err(not_found(req)),
        Fault::RateLimited(_) => Err(("429 Too Many Requests", None)),
        Fault::Down => Err(("503 Service Unavailable", None)),
        _ => Ok(()),
    }
}

/// The hub's answer for a repo it will not show: the same for a missing and a private one.
fn not_found(req: &Request) -> (&'static str, Option<&'static str>) {
    if req.headers.contains_key("authorization") {
        ("404 Not Found", Some("RepoNotFound"))
    } else {
        ("401 Unauthorized", None)
    }
}

fn serve_hub(
    stream: TcpStream,
    repos: &Mutex<BTreeMap<String, Repo>>,
    log: &Mutex<Vec<Seen>>,
    url: &str,
    cdn_url: &str,
) -> std::io::Result<()> {
    let req = read_request(&stream)?;
    log_request(log, &req, false);
    let body_too = req.method == "GET";
    // The mirror: every path handed over to the hub's absolute URL.
    if let Some(rest) = req.path.strip_prefix("/mirror/") {
        return respond(
            &stream,
            "308 Permanent Redirect",
            &[("Location", format!("{url}/{rest}"))],
            b"",
            body_too,
        );
    }
    let (path, _query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let refuse = |(status, code): (&str, Option<&str>), repo: Option<&Repo>| {
        let mut extra = Vec::new();
        if let Some(Repo {
            fault: Fault::RateLimited(s),
            ..
        }) = repo
        {
            extra.push(("Retry-After", s.to_string()));
        }
        error(&stream, status, code, &extra, body_too)
    };
    let find = |org: &str, name: &str| repos.lock().unwrap().get(&format!("{org}/{name}")).cloned();
    // The API: /api/models/{org}/{name}/revision/{revision}[?blobs=true]
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        let [org, name, "revision", revision] = parts.as_slice() else {
            return refuse(not_found(&req), None);
        };
        let Some(repo) = find(org, name) else {
            return refuse(not_found(&req), None);
        };
        if let Err(no) = access(&req, &repo) {
            return refuse(no, Some(&repo));
        }
        if *revision != "main" && *revision != repo.commit {
            return refuse(("404 Not Found", Some("RevisionNotFound")), None);
        }
        return respond(
            &stream,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            api_answer(org, name, &repo).as_bytes(),
            body_too,
        );
    }
    // Where a small file's 307 leads: /api/resolve-cache/models/{org}/{name}/{commit}/{file}
    if let Some(rest) = path.strip_prefix("/api/resolve-cache/models/") {
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        let [org, name, commit, file] = parts.as_slice() else {
            return refuse(not_found(&req), None);
        };
        let Some(repo) = find(org, name) else {
            return refuse(not_found(&req), None);
        };
        if let Err(no) = access(&req, &repo) {
            return refuse(no, Some(&repo));
        }
        let Some(bytes) = repo.files.get(*file).filter(|_| *commit == repo.commit) else {
            return refuse(("404 Not Found", Some("EntryNotFound")), None);
        };
        let headers = [
            ("X-Repo-Commit", repo.commit.clone()),
            ("ETag", format!("\"{}\"", small_etag(bytes))),
            ("Content-Type", "application/json".into()),
        ];
        return respond(&stream, "200 OK", &headers, bytes, body_too);
    }
    // /{org}/{name}/resolve/{revision}/{file}
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    let [org, name, "resolve", revision, file] = parts.as_slice() else {
        return refuse(not_found(&req), None);
    };
    let Some(repo) = find(org, name) else {
        return refuse(not_found(&req), None);
    };
    if let Err(no) = access(&req, &repo) {
        return refuse(no, Some(&repo));
    }
    let revision = revision.replace("%2F", "/");
    if revision != "main" && revision != repo.commit {
        return refuse(("404 Not Found", Some("RevisionNotFound")), None);
    }
    let commit = ("X-Repo-Commit", repo.commit.clone());
    let Some(bytes) = repo.files.get(*file) else {
        return error(
            &stream,
            "404 Not Found",
            Some("EntryNotFound"),
            &[commit],
            body_too,
        );
    };
    if bytes.len() < LFS_FROM {
        // The hub's relative 307, to a cache URL naming the commit and the etag.
        let location = format!(
            "/api/resolve-cache/models/{org}/{name}/{}/{file}?%2F{org}%2F{name}%2Fresolve%2F{}%2F{file}=&etag=%22{}%22",
            repo.commit,
            revision.replace('/', "%252F"),
            small_etag(bytes)
        );
        let body = format!("Temporary Redirect. Redirecting to {location}");
        return respond(
            &stream,
            "307 Temporary Redirect",
            &[commit, ("Location", location)],
            body.as_bytes(),
            body_too,
        );
    }
    let sha = hex(&Sha256::digest(bytes));
    let linked = match repo.fault {
        Fault::WrongSha => hex(&Sha256::digest(b"another file")),
        _ => sha,
    };
    let size = match repo.fault {
        Fault::WrongSize => bytes.len() + 1000,
        _ => bytes.len(),
    };
    let location = format!("{cdn_url}/cdn/{org}/{name}/{file}?X-Amz-Signature=stand-in");
    let body = format!("Found. Redirecting to {location}");
    let mut headers = vec![
        commit,
        ("X-Linked-Etag", format!("\"{linked}\"")),
        ("ETag", "W/\"not-the-content\"".into()),
        ("Location", location),
    ];
    if repo.fault != Fault::NoLinkedSize {
        headers.push(("X-Linked-Size", size.to_string()));
    }
    respond(&stream, "302 Found", &headers, body.as_bytes(), body_too)
}

/// What the hub's API says of a repo's revision (`?blobs=true`): its commit and, for each file,
/// its size, with the SHA-256 of the large ("LFS") ones; the faults lie here as the 302 does.
fn api_answer(org: &str, name: &str, repo: &Repo) -> String {
    let siblings: Vec<serde_json::Value> = repo
        .files
        .iter()
        .map(|(file, bytes)| {
            let mut entry = serde_json::json!({"rfilename": file, "size": bytes.len()});
            if bytes.len() >= LFS_FROM {
                let sha = match repo.fault {
                    Fault::WrongSha => hex(&Sha256::digest(b"another file")),
                    _ => hex(&Sha256::digest(bytes)),
                };
                let size = match repo.fault {
                    Fault::WrongSize => bytes.len() + 1000,
                    _ => bytes.len(),
                };
                entry["lfs"] = serde_json::json!({"sha256": sha, "size": size, "pointerSize": 134});
            }
            entry
        })
        .collect();
    serde_json::json!({
        "id": format!("{org}/{name}"),
        "sha": repo.commit,
        "siblings": siblings,
    })
    .to_string()
}

/// A forward (`GET http://host/path`) and CONNECT proxy on 127.0.0.1, as a corporate one
/// is, counting the requests that go through it.
pub struct CountingProxy {
    /// `http://127.0.0.1:PORT`, as `HTTPS_PROXY` names it.
    pub url: String,
    count: Arc<AtomicUsize>,
    _listener: Listener,
}

impl CountingProxy {
    pub fn start() -> Self {
        let count = Arc::new(AtomicUsize::new(0));
        let listener = {
            let count = count.clone();
            Listener::start(move |stream, _| {
                count.fetch_add(1, Ordering::SeqCst);
                let _ = tunnel(stream);
            })
        };
        Self {
            url: listener.url.clone(),
            count,
            _listener: listener,
        }
    }

    /// How many requests (or tunnels) went through.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// One client connection: a CONNECT tunnel, or a forwarded request.
fn tunnel(client: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut head = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        head.push(h);
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (upstream, first) = if method == "CONNECT" {
        let upstream = TcpStream::connect(target)?;
        (&client).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        (upstream, Vec::new())
    } else {
        // http://host:port/path -> host:port, and the request in origin form.
        let rest = target.strip_prefix("http://").unwrap_or(target);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let upstream = TcpStream::connect(authority)?;
        let mut first = format!(
            "{method} {} HTTP/1.1\r\n",
            if path.is_empty() { "/" } else { path }
        );
        for h in head
            .iter()
            .filter(|h| !h.to_ascii_lowercase().starts_with("proxy-"))
        {
            first.push_str(h);
        }
        first.push_str("\r\n");
        (upstream, first.into_bytes())
    };
    (&upstream).write_all(&first)?;
    // Bytes the reader took in beyond the head go upstream too.
    let buffered = reader.buffer().to_vec();
    (&upstream).write_all(&buffered)?;
    let (mut up_read, mut down_write) = (upstream.try_clone()?, client.try_clone()?);
    let down = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut down_write);
        let _ = down_write.shutdown(Shutdown::Write);
    });
    let mut client_read = reader.into_inner();
    let mut up_write = upstream;
    let _ = std::io::copy(&mut client_read, &mut up_write);
    let _ = up_write.shutdown(Shutdown::Write);
    let _ = down.join();
    Ok(())
}

/// HTTPS in front of a plain server on 127.0.0.1: TLS ends here (rustls, the certificate of
/// `tests/fixtures/tls`, signed by a CA no public store holds) and the bytes go on to
/// `upstream`, as a hub behind a TLS-inspecting firewall looks to a client.
pub struct TlsFront {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    _listener: Listener,
}

impl TlsFront {
    pub fn start(upstream: &str, tls_dir: &Path) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(tls_dir.join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(tls_dir.join("server.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let config = Arc::new(config);
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = Listener::start(move |stream, _| {
            let _ = terminate(stream, config.clone(), &upstream);
        });
        Self {
            url: listener.url.replace("http://", "https://"),
            _listener: listener,
        }
    }
}

/// One TLS connection: the request decrypted and sent to `upstream`, its answer encrypted back.
fn terminate(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    upstream: &str,
) -> std::io::Result<()> {
    let connection = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(connection, stream);
    // The stand-in answers one request per connection ("Connection: close"): read the request
    // head, pass it on, and copy the answer back until the upstream closes.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if std::io::Read::read(&mut tls, &mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&head)?;
    std::io::copy(&mut up, &mut tls)?;
    tls.conn.send_close_notify();
    tls.flush()
}
