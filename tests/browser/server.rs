//! A tiny static file server for the browser test: one folder, GET only, on 127.0.0.1. It
//! sends what `scripts/serve` sends: the page cross-origin isolated (COOP and COEP), so that
//! its engine runs the threaded build, or, as a plain static host does, not.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// At most this many connections are served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 16;

/// Whether the page is cross-origin isolated: with shared memory, its engine uses threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    Isolated,
    Plain,
}

/// Serves `root` cross-origin isolated, as `scripts/serve` does; returns the base URL.
pub fn serve(root: &Path) -> String {
    serve_with(root, Isolation::Isolated)
}

/// Serves `root` on an ephemeral port until the test process ends; returns the base URL.
pub fn serve_with(root: &Path, isolation: Isolation) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a local port");
    let addr = listener.local_addr().expect("local address");
    let root = root.to_path_buf();
    let open = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            while open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                std::thread::sleep(Duration::from_millis(5));
            }
            open.fetch_add(1, Ordering::SeqCst);
            let (root, open) = (root.clone(), open.clone());
            std::thread::spawn(move || {
                let _ = handle(stream, &root, isolation);
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    format!("http://{addr}")
}

fn handle(stream: TcpStream, root: &Path, isolation: Isolation) -> std::io::Result<()> {
    // Browsers open spare connections they may never use: do not wait on them for long.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut out = stream;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let body = match (method, resolve(root, target)) {
        ("GET" | "HEAD", Some(path)) => std::fs::read(&path).ok().map(|b| (path, b)),
        _ => None,
    };
    match body {
        Some((path, bytes)) => {
            let isolate = match isolation {
                Isolation::Isolated => {
                    "Cross-Origin-Opener-Policy: same-origin\r\nCross-Origin-Embedder-Policy: require-corp\r\n"
                }
                Isolation::Plain => "",
            };
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{isolate}Connection: close\r\n\r\n",
                content_type(&path),
                bytes.len()
            )?;
            if method == "GET" {
                out.write_all(&bytes)?;
            }
        }
        None => {
            out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")?;
        }
    }
    out.flush()
}

/// The file a URL path names inside `root`, refusing anything that climbs out of it.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let decoded = percent_decode(path)?;
    let mut out = root.to_path_buf();
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        if part == ".." || part.contains('\\') {
            return None;
        }
        out.push(part);
    }
    if out.is_dir() {
        out.push("index.html");
    }
    out.is_file().then_some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript",
        // Streaming compilation needs exactly this type.
        "wasm" => "application/wasm",
        "css" => "text/css",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}
