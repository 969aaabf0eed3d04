//! A stand-in for the Hugging Face hub on 127.0.0.1, speaking its protocol as clients see it:
//! `HEAD`/`GET /{org}/{name}/resolve/{revision}/{file}`; small files answered directly with
//! `X-Repo-Commit` and a quoted `ETag`; large files (the weights) with a 302 to a CDN path
//! carrying `X-Linked-Etag` (their SHA-256) and `X-Linked-Size`; errors with the hub's
//! `X-Error-Code` (`RepoNotFound`, `EntryNotFound`, `GatedRepo`); the API's
//! `GET /api/models/{org}/{name}/revision/{revision}` (the commit, each file's size and the
//! large ones' SHA-256), which a browser asks instead of reading a 302's headers; and the
//! hub's CORS headers, so that the page can fetch from it. Each repo can be made to misbehave
//! as real servers and networks do ([`Fault`]). No test touches the internet.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// How a repo misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// 401 `GatedRepo` unless the request carries this bearer token.
    Gated(&'static str),
    /// The weights' `X-Linked-Etag` is another file's SHA-256.
    WrongSha,
    /// `X-Linked-Size` announces more bytes than the weights have.
    WrongSize,
    /// The CDN sends half of the weights, then closes the connection.
    CutHalfway,
    /// The CDN sends half of the weights, then waits (a stalled network) for 30 s.
    StallHalfway,
    /// The CDN sends the weights in small pieces with a pause after each, as a slow network
    /// does: long enough to watch a progress bar.
    Slow,
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

    pub fn with_files(files: BTreeMap<String, Vec<u8>>) -> Self {
        // A commit hash that changes with the content, as git's does.
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

/// Files larger than this are "LFS" files, answered with a redirect to the CDN.
const LFS_FROM: usize = 10_000;

pub struct HubServer {
    pub url: String,
    /// Every request's method and path, in order.
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HubServer {
    pub fn start(repos: BTreeMap<String, Repo>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let repos = Arc::new(Mutex::new(repos));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (repos, log, stop, url) = (repos.clone(), log.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (repos, log, url) = (repos.clone(), log.clone(), url.clone());
                    std::thread::spawn(move || {
                        let _ = serve(stream, &repos, &log, &url);
                    });
                }
            })
        };
        Self {
            url,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// The requests so far, as "METHOD /path".
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Stops listening: later connections are refused, as from a machine without network.
    pub fn stop(mut self) {
        self.shut_down();
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

impl Drop for HubServer {
    fn drop(&mut self) {
        self.shut_down();
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
const CORS: &str = "Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: X-Repo-Commit, X-Error-Code, X-Linked-Etag, X-Linked-Size, ETag, Content-Length\r\n";

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

fn error(stream: &TcpStream, status: &str, code: &str, send_body: bool) -> std::io::Result<()> {
    let body = format!("{{\"error\": \"{code}\"}}");
    respond(
        stream,
        status,
        &[
            ("X-Error-Code", code.to_string()),
            ("Content-Type", "application/json".into()),
        ],
        body.as_bytes(),
        send_body,
    )
}

fn serve(
    stream: TcpStream,
    repos: &Mutex<BTreeMap<String, Repo>>,
    log: &Mutex<Vec<String>>,
    url: &str,
) -> std::io::Result<()> {
    let req = read_request(&stream)?;
    log.lock()
        .unwrap()
        .push(format!("{} {}", req.method, req.path));
    let body_too = req.method == "GET";
    // The CDN: /cdn/{repo}/{file}, what a 302 points at.
    if let Some(rest) = req.path.strip_prefix("/cdn/") {
        let (repo_id, file) = rest.rsplit_once('/').unwrap_or((rest, ""));
        let repo = repos.lock().unwrap().get(repo_id).cloned();
        let Some(bytes) = repo.as_ref().and_then(|r| r.files.get(file)) else {
            return error(&stream, "404 Not Found", "EntryNotFound", body_too);
        };
        let fault = repo.as_ref().unwrap().fault;
        if matches!(fault, Fault::CutHalfway | Fault::StallHalfway) && body_too {
            let half = &bytes[..bytes.len() / 2];
            respond(
                &stream,
                "200 OK",
                &[("Content-Length", bytes.len().to_string())],
                half,
                true,
            )?;
            if fault == Fault::StallHalfway {
                std::thread::sleep(std::time::Duration::from_secs(30));
            }
            return stream.shutdown(std::net::Shutdown::Both);
        }
        if fault == Fault::Slow && body_too {
            respond(
                &stream,
                "200 OK",
                &[("Content-Length", bytes.len().to_string())],
                b"",
                true,
            )?;
            let piece = bytes.len().div_ceil(40).max(1);
            for chunk in bytes.chunks(piece) {
                (&stream).write_all(chunk)?;
                (&stream).flush()?;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            return Ok(());
        }
        return respond(&stream, "200 OK", &[], bytes, body_too);
    }
    // The API: /api/models/{org}/{name}/revision/{revision}[?blobs=true]
    if let Some(rest) = req.path.strip_prefix("/api/models/") {
        let rest = rest.split('?').next().unwrap_or("");
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        let [org, name, "revision", revision] = parts.as_slice() else {
            return error(&stream, "404 Not Found", "RepoNotFound", body_too);
        };
        let repo = repos.lock().unwrap().get(&format!("{org}/{name}")).cloned();
        let Some(repo) = repo else {
            return error(&stream, "404 Not Found", "RepoNotFound", body_too);
        };
        if *revision != "main" && *revision != repo.commit {
            return error(&stream, "404 Not Found", "RevisionNotFound", body_too);
        }
        return respond(
            &stream,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            api_answer(org, name, &repo).as_bytes(),
            body_too,
        );
    }
    // /{org}/{name}/resolve/{revision}/{file}
    let parts: Vec<&str> = req.path.trim_start_matches('/').splitn(5, '/').collect();
    let [org, name, "resolve", revision, file] = parts.as_slice() else {
        return error(&stream, "404 Not Found", "RepoNotFound", body_too);
    };
    let repo_id = format!("{org}/{name}");
    let Some(repo) = repos.lock().unwrap().get(&repo_id).cloned() else {
        return error(&stream, "404 Not Found", "RepoNotFound", body_too);
    };
    if let Fault::Gated(token) = repo.fault
        && req.headers.get("authorization") != Some(&format!("Bearer {token}"))
    {
        return error(&stream, "401 Unauthorized", "GatedRepo", body_too);
    }
    if *revision != "main" && *revision != repo.commit {
        return error(&stream, "404 Not Found", "RevisionNotFound", body_too);
    }
    let Some(bytes) = repo.files.get(*file) else {
        return error(&stream, "404 Not Found", "EntryNotFound", body_too);
    };
    let sha = hex(&Sha256::digest(bytes));
    let commit = ("X-Repo-Commit", repo.commit.clone());
    if bytes.len() < LFS_FROM {
        let etag = ("ETag", format!("\"{}\"", &sha[..40]));
        return respond(&stream, "200 OK", &[commit, etag], bytes, body_too);
    }
    let linked = match repo.fault {
        Fault::WrongSha => hex(&Sha256::digest(b"another file")),
        _ => sha,
    };
    let size = match repo.fault {
        Fault::WrongSize => bytes.len() + 1000,
        _ => bytes.len(),
    };
    respond(
        &stream,
        "302 Found",
        &[
            commit,
            ("X-Linked-Etag", format!("\"{linked}\"")),
            ("X-Linked-Size", size.to_string()),
            ("ETag", "\"W/not-the-content\"".into()),
            ("Location", format!("{url}/cdn/{repo_id}/{file}")),
        ],
        b"",
        body_too,
    )
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
