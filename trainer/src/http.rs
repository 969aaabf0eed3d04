//! HTTP for the trainer's downloads (CIFAR's archives, the hub's files), on ureq 3: the
//! network as a user's machine has it, and a body streamed with progress.
//!
//! - Proxies from the environment, as ureq reads them: `ALL_PROXY`, `HTTPS_PROXY`,
//!   `HTTP_PROXY` (upper or lower case, the first set wins, for every request) and `NO_PROXY`'s
//!   hosts bypassing it.
//! - Trusted roots: Mozilla's bundled set and the system's store (`rustls-native-certs`, which
//!   honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), so that behind a TLS-inspecting firewall
//!   whose certificate the system trusts the download works as it does for Python.
//! - No status is an error; the hub's client follows no redirect by itself, because it must
//!   choose which hosts may see a token.
//! - [`save`] copies a body to a file in chunks, hashing and counting them under a [`Progress`]
//!   bar, and says where it was cut ([`Cut`]); [`describe`] says in one line why a request got
//!   no answer.
//! - Headers ([`header`], [`content_length`]) and redirects' targets ([`resolve`], [`origin`]),
//!   read the same way for every answer.

use std::io::{IsTerminal, Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::Digest;
use ureq3::http::{Response, Uri};
use ureq3::tls::{Certificate, RootCerts, TlsConfig};
use ureq3::{Agent, Body, Proxy};

/// How long connecting may take (through a proxy and TLS too), for CIFAR's download and the
/// hub alike; the hub waits longer when `HF_HUB_ETAG_TIMEOUT` asks for more.
pub const CONNECT: Duration = Duration::from_secs(30);

/// How long to wait, for one agent.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To connect (through a proxy and TLS too).
    pub connect: Duration,
    /// For an answer's headers, and for each read of its body: a stalled server fails the
    /// request instead of hanging it.
    pub read: Duration,
}

/// An agent for the network as the environment describes it (proxies, trusted roots), that
/// returns every status as an answer and follows up to `redirects` redirects (ureq drops
/// `Authorization` on the way).
pub fn agent(timeouts: Timeouts, redirects: u32) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(redirects)
        .max_redirects_will_error(redirects > 0)
        .proxy(Proxy::try_from_env())
        .tls_config(TlsConfig::builder().root_certs(roots().clone()).build())
        .timeout_connect(Some(timeouts.connect))
        .timeout_recv_response(Some(timeouts.read))
        .timeout_per_read(Some(timeouts.read))
        .user_agent(concat!("vitrine/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Mozilla's roots and the system's, read once per process (the system's store can be a
/// 300 KB file to parse).
fn roots() -> &'static RootCerts {
    static ROOTS: OnceLock<RootCerts> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let bundled = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned());
        // A store that cannot be read adds nothing; the bundled roots still serve.
        let system = rustls_native_certs::load_native_certs().certs;
        let system = system
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned());
        bundled.chain(system).collect::<Vec<_>>().into()
    })
}

/// The proxy a request to `url` goes through, as `host:port`, if any.
pub fn proxy_for(url: &str) -> Option<String> {
    let proxy = Proxy::try_from_env()?;
    let uri: ureq3::http::Uri = url.parse().ok()?;
    (!proxy.is_no_proxy(&uri)).then(|| format!("{}:{}", proxy.host(), proxy.port()))
}

/// Why a request got no answer, in one line, naming the proxy it went through.
pub fn describe(error: &ureq3::Error, url: &str, timeouts: Timeouts) -> String {
    use ureq3::Error as E;
    let why = match error {
        E::Timeout(ureq3::Timeout::Connect | ureq3::Timeout::Resolve) => {
            format!("no connection within {} s", timeouts.connect.as_secs_f32())
        }
        E::Timeout(_) => format!("no answer within {} s", timeouts.read.as_secs_f32()),
        E::HostNotFound => "its host name is not known (DNS)".into(),
        E::ConnectionFailed => "the connection was refused".into(),
        E::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => tls(e),
        E::Io(e) => match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "the connection was refused".into(),
            std::io::ErrorKind::TimedOut => {
                format!("no answer within {} s", timeouts.read.as_secs_f32())
            }
            _ => one_line(&e.to_string()),
        },
        E::Rustls(e) => tls(e),
        E::ConnectProxyFailed(why) => {
            format!("the proxy refused the connection: {}", one_line(why))
        }
        E::InvalidProxyUrl => {
            "the proxy in HTTPS_PROXY, HTTP_PROXY or ALL_PROXY is not a URL".into()
        }
        other => one_line(&other.to_string()),
    };
    match proxy_for(url) {
        Some(proxy) => format!(
            "{why}, through the proxy {proxy} (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY; NO_PROXY lists hosts that bypass it)"
        ),
        None => why,
    }
}

/// A TLS failure, with where a firewall's certificate goes (the usual cause behind a
/// corporate network).
fn tls(e: &impl std::fmt::Display) -> String {
    format!(
        "TLS failed: {}; a firewall that inspects TLS needs its certificate in the system's store or in SSL_CERT_FILE",
        one_line(&e.to_string())
    )
}

/// `text` on one line: the transport's and the hub's messages can span several.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why [`save`] stopped before the body's end.
pub enum Cut {
    Read(std::io::Error),
    Write(std::io::Error),
    /// More than the limit arrived.
    TooLong,
    /// The body ended before the length the answer announced.
    Short {
        total: u64,
    },
}

/// Copies `body` into `out` in 64 KiB chunks, hashing them with `D` and counting them on
/// `progress`; refuses more than `limit` bytes, and fewer than `expected` (the length the
/// answer announced). Returns the hash, as lowercase hex; the bar is finished either way.
pub fn save<D: Digest>(
    body: &mut impl Read,
    out: &mut impl Write,
    expected: Option<u64>,
    limit: Option<u64>,
    progress: &mut Progress,
) -> Result<String, Cut> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 16];
    let result = loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break Ok(progress.got),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(Cut::Read(e)),
        };
        if limit.is_some_and(|l| progress.got + n as u64 > l) {
            break Err(Cut::TooLong);
        }
        if let Err(e) = out.write_all(&buf[..n]) {
            break Err(Cut::Write(e));
        }
        hasher.update(&buf[..n]);
        progress.add(n as u64);
    };
    progress.finish();
    let bytes = result?;
    if let Some(total) = expected.filter(|&t| t != bytes) {
        return Err(Cut::Short { total });
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// indicatif's byte counter on a terminal; in a log, one line when the download ends.
pub struct Progress {
    bar: ProgressBar,
    name: String,
    got: u64,
    start: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(url: &str, total: Option<u64>) -> Self {
        let name = url.rsplit('/').next().unwrap_or(url).to_string();
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(4))
        } else {
            ProgressBar::hidden()
        };
        let template = if total.is_some() {
            "{msg}: [{bar:30}] {decimal_bytes} / {decimal_total_bytes} ({percent}%), {decimal_bytes_per_sec}, ETA {eta}"
        } else {
            "{msg}: {decimal_bytes}, {decimal_bytes_per_sec}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("#>."),
        );
        bar.set_message(name.clone());
        Self {
            bar,
            name,
            got: 0,
            start: Instant::now(),
            quiet: false,
        }
    }

    /// No bar and no closing line (a file too small to be worth one, or bars turned off).
    pub fn quiet(&mut self) {
        self.quiet = true;
        self.bar.finish_and_clear();
        self.bar = ProgressBar::hidden();
    }

    /// Bytes so far.
    pub fn got(&self) -> u64 {
        self.got
    }

    pub fn add(&mut self, n: u64) {
        self.got += n;
        self.bar.inc(n);
    }

    pub fn finish(&mut self) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            let mb = self.got as f64 / 1e6;
            let rate = mb / self.start.elapsed().as_secs_f64().max(1e-3);
            eprintln!("{}: {mb:.1} MB, {rate:.1} MB/s", self.name);
        } else {
            self.bar.finish();
        }
    }
}

/// Whether a body's read failed because the server sent nothing for too long.
pub fn timed_out(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq3::Error>())
            .is_some_and(|u| matches!(u, ureq3::Error::Timeout(_)))
}

/// A header's value, trimmed, if it is text.
pub fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// The body's length, as `Content-Length` announces it.
pub fn content_length(response: &Response<Body>) -> Option<u64> {
    header(response, "Content-Length").and_then(|s| s.parse().ok())
}

/// `scheme://host:port` of a URL, lower-cased, with the scheme's default port spelt out.
pub fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some((scheme, host, port))
}

/// Where `location` (a `Location` header) points from `base`: an absolute URL, one on the same
/// host (`/path`, `//host/path`), or one relative to `base`'s folder.
pub fn resolve(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.contains("://") {
        return Some(location.to_owned());
    }
    let (scheme, rest) = base.split_once("://")?;
    if let Some(other_host) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{other_host}"));
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path = base.split(['?', '#']).next()?;
    let folder = &path[..path.rfind('/')? + 1];
    Some(format!("{folder}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_url_they_answer() {
        let base = "https://huggingface.co/timm/x/resolve/main/config.json?a=1";
        assert_eq!(
            resolve(
                base,
                "/api/resolve-cache/models/timm/x/abc/config.json?etag=%22e%22"
            )
            .as_deref(),
            Some(
                "https://huggingface.co/api/resolve-cache/models/timm/x/abc/config.json?etag=%22e%22"
            )
        );
        assert_eq!(
            resolve(base, "https://cdn-lfs.hf.co/repos/a/b?sig=1").as_deref(),
            Some("https://cdn-lfs.hf.co/repos/a/b?sig=1")
        );
        assert_eq!(
            resolve(base, "//cdn.example/x").as_deref(),
            Some("https://cdn.example/x")
        );
        assert_eq!(
            resolve(base, "model.safetensors").as_deref(),
            Some("https://huggingface.co/timm/x/resolve/main/model.safetensors")
        );
    }

    #[test]
    fn a_body_is_saved_hashed_and_measured() {
        let body = b"0123456789".repeat(10_000);
        let mut progress = Progress::new("x", Some(body.len() as u64));
        progress.quiet();
        let mut out = Vec::new();
        let hash =
            save::<sha2::Sha256>(&mut &body[..], &mut out, Some(100_000), None, &mut progress)
                .unwrap_or_else(|_| panic!("the whole body saves"));
        assert_eq!((progress.got(), out.len()), (100_000, 100_000));
        assert_eq!(hash, format!("{:x}", sha2::Sha256::digest(&body)));
        let cut = |expected, limit| {
            let mut progress = Progress::new("x", None);
            progress.quiet();
            save::<sha2::Sha256>(
                &mut &body[..],
                &mut Vec::new(),
                expected,
                limit,
                &mut progress,
            )
        };
        assert!(matches!(
            cut(Some(100_001), None),
            Err(Cut::Short { total: 100_001 })
        ));
        assert!(matches!(cut(None, Some(99_999)), Err(Cut::TooLong)));
        assert!(cut(None, Some(100_000)).is_ok());
    }
}
