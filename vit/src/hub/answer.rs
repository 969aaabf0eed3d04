//! What a hub's refusal means, and the one line that says what to do about it.
//!
//! The trainer (ureq) and the page (fetch) both read the same few facts of a failed answer,
//! its status, `X-Error-Code`, whether a token was sent and `Retry-After`, into a
//! [`Refusal`], so that a typo'd name, a gated repo or an outage gets the same advice on the
//! command line and in the browser. Read against huggingface_hub's `hf_raise_for_status`:
//! - the hub does not tell a missing repo from a private one: an anonymous request for either
//!   gets 401 with no `X-Error-Code` (only a request with a token gets 404 `RepoNotFound`), so
//!   that 401 means "not found, or private", never "log in";
//! - gated repos answer 401 `GatedRepo` anonymously and 403 `GatedRepo` to a token whose
//!   account has not been granted access;
//! - a missing file is 404 `EntryNotFound`, a missing branch, tag or commit 404
//!   `RevisionNotFound`;
//! - 429 is a rate limit, with `Retry-After` in seconds; 5xx is the hub down or overloaded.
//!
//! No I/O here, so that the wasm page can use it.

use super::model::{CONFIG_FILE, WEIGHTS_FILE};
use super::name::{DEFAULT_ENDPOINT, HubName};

/// The facts of a failed answer that its meaning depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    pub status: u16,
    /// The hub's `X-Error-Code` header.
    pub error_code: Option<&'a str>,
    /// Whether the request carried a token (`Authorization: Bearer ...`).
    pub token_sent: bool,
    /// The `Retry-After` header, as sent.
    pub retry_after: Option<&'a str>,
}

/// Which program the advice is for: only the trainer sends a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Trainer,
    Page,
}

/// What a failed answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such repo, or a private one (anonymous 401 without a code, `RepoNotFound`, or a bare
    /// 404), asked without a token.
    NotFound,
    /// No such repo that the token's account can see (404 `RepoNotFound` with a token).
    NotFoundWithToken,
    /// A gated repo, asked without a token.
    Gated,
    /// A gated repo, asked with a token whose account has no access (yet).
    GatedNoAccess,
    /// 401 without a code although a token was sent: the hub did not accept the token.
    TokenRefused,
    /// 403 without a code: the credentials are not allowed to read the repo.
    Forbidden { token_sent: bool },
    /// 404 `EntryNotFound`: the revision has no such file.
    MissingFile,
    /// 404 `RevisionNotFound`.
    UnknownRevision,
    /// 429, with the wait the hub asked for, in seconds.
    RateLimited { retry_after: Option<u64> },
    /// 5xx: the hub is down or overloaded.
    HubDown { status: u16 },
    /// Any other status.
    Other { status: u16 },
}

impl Answer<'_> {
    /// What the answer means, as huggingface_hub's `hf_raise_for_status` reads it.
    pub fn refusal(&self) -> Refusal {
        let token = self.token_sent;
        match (self.error_code.map(str::trim), self.status) {
            (Some("GatedRepo"), _) if token => Refusal::GatedNoAccess,
            (Some("GatedRepo"), _) => Refusal::Gated,
            (Some("RevisionNotFound"), _) => Refusal::UnknownRevision,
            (Some("EntryNotFound"), _) => Refusal::MissingFile,
            (Some("RepoNotFound"), _) | (_, 404) if token => Refusal::NotFoundWithToken,
            (Some("RepoNotFound"), _) | (_, 404) => Refusal::NotFound,
            (_, 401) if token => Refusal::TokenRefused,
            (_, 401) => Refusal::NotFound,
            (_, 403) => Refusal::Forbidden { token_sent: token },
            (_, 429) => Refusal::RateLimited {
                retry_after: self.retry_after.and_then(seconds),
            },
            (_, status @ 500..=599) => Refusal::HubDown { status },
            (_, status) => Refusal::Other { status },
        }
    }

    /// Whether a copy already in the cache may stand in for the file, as huggingface_hub lets
    /// one do: the hub down (5xx), rate-limiting (429), or refusing the credentials (401,
    /// 403). A missing file, revision or repo that the hub *says* is missing (404) is not
    /// papered over.
    pub fn cache_may_serve(&self) -> bool {
        matches!(self.status, 401 | 403 | 429 | 500..=599)
    }
}

/// `Retry-After` in seconds; the HTTP-date form is not read (huggingface_hub does not either).
fn seconds(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

/// The repo's page on the hub, where its terms are accepted.
fn repo_page(name: &HubName, endpoint: &str) -> String {
    format!("{}/{}", endpoint.trim_end_matches('/'), name.repo_id())
}

/// What to do to read a private or gated repo, for each client.
fn with_a_token(client: Client, name: &HubName) -> String {
    match client {
        Client::Trainer => "set HF_TOKEN to a token of an account that can read it".into(),
        Client::Page => format!(
            "run `trainer predict --model {name}` with HF_TOKEN set (this page sends no token)"
        ),
    }
}

impl Refusal {
    /// One line naming the model and what to do, for a refusal of `file` of `name` by the hub
    /// at `endpoint`.
    pub fn message(&self, name: &HubName, endpoint: &str, file: &str, client: Client) -> String {
        let host = endpoint.trim_end_matches('/');
        match *self {
            Refusal::NotFound => format!(
                "{name} was not found on {host}: check the name (ORG/NAME, e.g. timm/deit_tiny_patch16_224.fb_in1k); if it is private, {}",
                with_a_token(client, name)
            ),
            Refusal::NotFoundWithToken => format!(
                "{name} was not found on {host}, nor among the private repos HF_TOKEN's account can see: check the name"
            ),
            Refusal::Gated => format!(
                "{name} is gated: accept its terms at {}, then {}",
                repo_page(name, endpoint),
                with_a_token(client, name)
            ),
            Refusal::GatedNoAccess => format!(
                "{name} is gated and HF_TOKEN's account has no access to it yet: accept its terms at {} (some authors approve each request)",
                repo_page(name, endpoint)
            ),
            Refusal::TokenRefused => format!(
                "{name}: the hub refused HF_TOKEN (HTTP 401): it is invalid or expired; make a new one at {host}/settings/tokens"
            ),
            Refusal::Forbidden { token_sent: true } => format!(
                "{name}: HF_TOKEN is not allowed to read it (HTTP 403): use a token with read access to this repo"
            ),
            Refusal::Forbidden { token_sent: false } => format!(
                "{name}: the hub refuses to serve it (HTTP 403); if it needs an account, {}",
                with_a_token(client, name)
            ),
            Refusal::MissingFile => {
                let at = if name.revision == super::DEFAULT_REVISION {
                    String::new()
                } else {
                    format!(" at revision '{}'", name.revision)
                };
                match file {
                    CONFIG_FILE => format!(
                        "{name} has no {CONFIG_FILE}{at}: it is not a timm model (timm's hub repos hold {CONFIG_FILE} and {WEIGHTS_FILE})"
                    ),
                    WEIGHTS_FILE => format!(
                        "{name} has no {WEIGHTS_FILE}{at}: Vitrine reads timm's safetensors weights only, not pytorch_model.bin"
                    ),
                    _ => format!("{name} has no {file}{at}"),
                }
            }
            Refusal::UnknownRevision => format!(
                "{name}: the repo has no revision '{}' (a branch, tag or commit)",
                name.revision
            ),
            Refusal::RateLimited { retry_after } => {
                let wait = match retry_after {
                    Some(s) => format!("in {s} s, as the hub asks"),
                    None => "in a few minutes".into(),
                };
                format!("the hub is limiting requests (HTTP 429) for {name}; try again {wait}")
            }
            Refusal::HubDown { status } => format!(
                "the hub at {host} is down or overloaded (HTTP {status}) for {name}; try again later: {}",
                kept_copies(client)
            ),
            Refusal::Other { status } => {
                format!("{name}: the hub at {host} answered HTTP {status} for {file}")
            }
        }
    }
}

/// What still works while the hub cannot be used.
fn kept_copies(client: Client) -> &'static str {
    match client {
        Client::Trainer => "models already in the cache still run",
        Client::Page => "models kept from an earlier visit still load",
    }
}

/// One line for a request that got no answer at all (`why`: the transport's own words).
pub fn unreachable(name: &HubName, endpoint: &str, why: &str, client: Client) -> String {
    format!(
        "{name}: the hub at {} could not be reached ({why}); {}",
        endpoint.trim_end_matches('/'),
        kept_copies(client)
    )
}

/// The endpoint a hub URL was made from: everything before `/{org}/{name}/resolve/` or
/// `/api/models/{org}/{name}/` (the page knows the URL of a failed request, not its endpoint).
pub fn endpoint_of<'u>(url: &'u str, name: &HubName) -> &'u str {
    let repo = name.repo_id();
    [format!("/{repo}/resolve/"), format!("/api/models/{repo}/")]
        .iter()
        .find_map(|marker| url.find(marker.as_str()).map(|at| &url[..at]))
        .unwrap_or(DEFAULT_ENDPOINT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, code: Option<&'static str>, token_sent: bool) -> Answer<'static> {
        Answer {
            status,
            error_code: code,
            token_sent,
            retry_after: None,
        }
    }

    #[test]
    fn the_hubs_answers_mean_what_huggingface_hub_reads_in_them() {
        let cases = [
            // An anonymous 401 without a code is the hub's answer for a missing repo too.
            (answer(401, None, false), Refusal::NotFound),
            (
                answer(404, Some("RepoNotFound"), true),
                Refusal::NotFoundWithToken,
            ),
            (answer(401, Some("RepoNotFound"), false), Refusal::NotFound),
            (answer(404, None, false), Refusal::NotFound),
            (answer(401, Some("GatedRepo"), false), Refusal::Gated),
            (answer(403, Some("GatedRepo"), true), Refusal::GatedNoAccess),
            (answer(401, None, true), Refusal::TokenRefused),
            (
                answer(403, None, true),
                Refusal::Forbidden { token_sent: true },
            ),
            (
                answer(404, Some("EntryNotFound"), false),
                Refusal::MissingFile,
            ),
            (
                answer(404, Some("RevisionNotFound"), true),
                Refusal::UnknownRevision,
            ),
            (answer(503, None, false), Refusal::HubDown { status: 503 }),
            (answer(418, None, false), Refusal::Other { status: 418 }),
        ];
        for (a, expected) in cases {
            assert_eq!(a.refusal(), expected, "{a:?}");
        }
        let limited = Answer {
            retry_after: Some(" 42 "),
            ..answer(429, None, false)
        };
        assert_eq!(
            limited.refusal(),
            Refusal::RateLimited {
                retry_after: Some(42)
            }
        );
        let dated = Answer {
            retry_after: Some("Wed, 21 Oct 2015 07:28:00 GMT"),
            ..limited
        };
        assert_eq!(dated.refusal(), Refusal::RateLimited { retry_after: None });
    }

    #[test]
    fn a_cached_copy_stands_in_for_outages_and_refused_credentials_only() {
        for status in [401, 403, 429, 500, 502, 503, 504] {
            assert!(answer(status, None, false).cache_may_serve(), "{status}");
        }
        for (status, code) in [
            (404, Some("EntryNotFound")),
            (404, Some("RevisionNotFound")),
            (404, Some("RepoNotFound")),
            (400, None),
        ] {
            assert!(!answer(status, code, true).cache_may_serve(), "{status}");
        }
    }

    #[test]
    fn each_message_is_one_line_naming_the_model_and_what_to_do() {
        let name = HubName::parse("timm/deit_tiny_patch16_224.fb_in1k").unwrap();
        let endpoint = "https://huggingface.co/";
        let says =
            |r: Refusal, file: &str, client: Client| r.message(&name, endpoint, file, client);
        let all = [
            Refusal::NotFound,
            Refusal::NotFoundWithToken,
            Refusal::Gated,
            Refusal::GatedNoAccess,
            Refusal::TokenRefused,
            Refusal::Forbidden { token_sent: true },
            Refusal::Forbidden { token_sent: false },
            Refusal::MissingFile,
            Refusal::UnknownRevision,
            Refusal::RateLimited { retry_after: None },
            Refusal::HubDown { status: 503 },
            Refusal::Other { status: 418 },
        ];
        for r in all {
            for client in [Client::Trainer, Client::Page] {
                let m = says(r, CONFIG_FILE, client);
                assert!(m.contains("timm/deit_tiny_patch16_224.fb_in1k"), "{m}");
                assert!(!m.contains('\n') && !m.contains("//timm"), "{m}");
            }
        }
        let typo = says(Refusal::NotFound, CONFIG_FILE, Client::Trainer);
        assert!(
            typo.contains("not found")
                && typo.contains("check the name")
                && typo.contains("HF_TOKEN"),
            "{typo}"
        );
        assert!(
            !typo.contains("log"),
            "a typo is not a login problem: {typo}"
        );
        let gated = says(Refusal::Gated, CONFIG_FILE, Client::Page);
        assert!(
            gated.contains("https://huggingface.co/timm/deit_tiny_patch16_224.fb_in1k")
                && gated.contains("sends no token"),
            "{gated}"
        );
        // The page says what the trainer says of an outage, but for its own kept copies.
        let down = |c| says(Refusal::HubDown { status: 503 }, CONFIG_FILE, c);
        let (cli, page) = (down(Client::Trainer), down(Client::Page));
        assert_eq!(cli.split(';').next(), page.split(';').next());
        let limited = says(
            Refusal::RateLimited {
                retry_after: Some(30),
            },
            WEIGHTS_FILE,
            Client::Page,
        );
        assert!(
            limited.contains("429") && limited.contains("in 30 s"),
            "{limited}"
        );
        let only_bin = says(Refusal::MissingFile, WEIGHTS_FILE, Client::Trainer);
        assert!(
            only_bin.contains("pytorch_model.bin") && !only_bin.contains("not a timm model"),
            "{only_bin}"
        );
        let no_config = says(Refusal::MissingFile, CONFIG_FILE, Client::Trainer);
        assert!(no_config.contains("not a timm model"), "{no_config}");
    }

    #[test]
    fn the_endpoint_is_read_back_from_a_request_url() {
        let name = HubName::parse("timm/deit@v1").unwrap();
        assert_eq!(
            endpoint_of("http://127.0.0.1:9/timm/deit/resolve/v1/config.json", &name),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            endpoint_of(
                "http://h/mirror/api/models/timm/deit/revision/v1?blobs=true",
                &name
            ),
            "http://h/mirror"
        );
        assert_eq!(endpoint_of("garbage", &name), DEFAULT_ENDPOINT);
    }
}
