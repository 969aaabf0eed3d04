//! Where and how to reach the hub ([`HubEnv`]), read from huggingface_hub's environment
//! variables as its `constants.py` and `_auth.py` read them, and the repo's folder in its
//! cache. docs/hub.md lists every variable.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vit::hub::HubName;

/// Where and how to reach the hub, from huggingface_hub's environment variables.
#[derive(Debug, Clone)]
pub struct HubEnv {
    pub endpoint: String,
    pub cache: PathBuf,
    pub token: Option<String>,
    pub offline: bool,
    /// `HF_HUB_DISABLE_PROGRESS_BARS`: no bar, and no closing line either.
    pub quiet: bool,
    /// `HF_HUB_ETAG_TIMEOUT`: how long to wait for the hub to name a file's commit and size.
    pub etag_timeout: Duration,
    /// `HF_HUB_DOWNLOAD_TIMEOUT`: how long a download may wait for its next bytes.
    pub download_timeout: Duration,
}

/// huggingface_hub's reading of a yes/no variable.
fn is_true(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE"))
}

/// huggingface_hub's `_clean_token`: no line breaks, no surrounding spaces, and empty is none
/// (a token pasted with its newline still works).
fn clean_token(token: &str) -> Option<String> {
    let token = token.replace(['\r', '\n'], "");
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// `~` at the start of a path is the home folder, as Python's `expanduser` reads it (a value
/// set in a file or quoted in a shell arrives unexpanded).
fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with(['/', '\\']) => {
            home.join(rest.trim_start_matches(['/', '\\']))
        }
        _ => PathBuf::from(path),
    }
}

impl HubEnv {
    pub fn from_env() -> Self {
        Self::from_vars(
            |name| std::env::var(name).ok().filter(|v| !v.is_empty()),
            home::home_dir(),
        )
    }

    /// The settings `var` (the environment) describes, with `home` the user's home folder.
    fn from_vars(var: impl Fn(&str) -> Option<String>, home: Option<PathBuf>) -> Self {
        let path = |name: &str| var(name).map(|p| expand_home(&p, home.as_deref()));
        // The platform's home folder (USERPROFILE on Windows), as Python's expanduser finds it;
        // without one, the working folder rather than no cache at all.
        let hf_home = path("HF_HOME").unwrap_or_else(|| {
            path("XDG_CACHE_HOME")
                .or_else(|| home.as_ref().map(|h| h.join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("huggingface")
        });
        let token_file = path("HF_TOKEN_PATH").unwrap_or_else(|| hf_home.join("token"));
        let token = if is_true(var("HF_HUB_DISABLE_IMPLICIT_TOKEN")) {
            None
        } else {
            var("HF_TOKEN")
                .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
                .and_then(|t| clean_token(&t))
                .or_else(|| {
                    fs::read_to_string(token_file)
                        .ok()
                        .and_then(|t| clean_token(&t))
                })
        };
        let seconds = |name: &str| {
            let s = var(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or(10.0);
            Duration::from_secs_f64(s)
        };
        Self {
            endpoint: var("HF_ENDPOINT")
                .map(|e| e.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| vit::hub::DEFAULT_ENDPOINT.into()),
            cache: path("HF_HUB_CACHE")
                .or_else(|| path("HUGGINGFACE_HUB_CACHE"))
                .unwrap_or_else(|| hf_home.join("hub")),
            token,
            offline: is_true(var("HF_HUB_OFFLINE").or_else(|| var("TRANSFORMERS_OFFLINE"))),
            quiet: is_true(var("HF_HUB_DISABLE_PROGRESS_BARS")),
            etag_timeout: seconds("HF_HUB_ETAG_TIMEOUT"),
            download_timeout: seconds("HF_HUB_DOWNLOAD_TIMEOUT"),
        }
    }

    /// `models--{org}--{name}`, the repo's folder in the cache.
    pub(super) fn repo_dir(&self, name: &HubName) -> PathBuf {
        self.cache
            .join(format!("models--{}--{}", name.org, name.name))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env(vars: &[(&str, &str)], home: &str) -> HubEnv {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubEnv::from_vars(|n| vars.get(n).cloned(), Some(PathBuf::from(home)))
    }

    #[test]
    fn yes_is_spelt_as_huggingface_hub_spells_it() {
        for yes in ["1", "on", "YES", "true"] {
            assert!(is_true(Some(yes.into())), "{yes}");
        }
        for no in ["0", "", "no", "off"] {
            assert!(!is_true(Some(no.into())), "{no}");
        }
        assert!(!is_true(None));
    }

    #[test]
    fn the_cache_is_where_huggingface_hub_puts_it() {
        let home = "/home/ada";
        assert_eq!(
            env(&[], home).cache,
            Path::new("/home/ada/.cache/huggingface/hub")
        );
        assert_eq!(
            env(&[("XDG_CACHE_HOME", "/xdg")], home).cache,
            Path::new("/xdg/huggingface/hub")
        );
        assert_eq!(
            env(&[("HF_HOME", "~/hf")], home).cache,
            Path::new("/home/ada/hf/hub")
        );
        // The legacy name still counts, below the current one.
        assert_eq!(
            env(&[("HUGGINGFACE_HUB_CACHE", "/legacy")], home).cache,
            Path::new("/legacy")
        );
        assert_eq!(
            env(
                &[
                    ("HUGGINGFACE_HUB_CACHE", "/legacy"),
                    ("HF_HUB_CACHE", "/new")
                ],
                home
            )
            .cache,
            Path::new("/new")
        );
        assert_eq!(
            expand_home("~user/x", Some(Path::new("/h"))),
            Path::new("~user/x")
        );
    }

    #[test]
    fn tokens_are_cleaned_and_found_where_huggingface_hub_looks() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        assert_eq!(
            env(&[("HF_TOKEN", " hf_abc\r\n")], home).token.as_deref(),
            Some("hf_abc")
        );
        assert_eq!(
            env(&[("HUGGING_FACE_HUB_TOKEN", "hf_old\n")], home)
                .token
                .as_deref(),
            Some("hf_old")
        );
        assert_eq!(env(&[("HF_TOKEN", "\n")], home).token, None);
        // The file `hf auth login` writes, at HF_TOKEN_PATH or in HF_HOME.
        let file = dir.path().join("my-token");
        fs::write(&file, "hf_file\n").unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(
            env(&[("HF_TOKEN_PATH", path)], home).token.as_deref(),
            Some("hf_file")
        );
        fs::create_dir_all(dir.path().join(".cache/huggingface")).unwrap();
        fs::write(dir.path().join(".cache/huggingface/token"), "hf_home").unwrap();
        assert_eq!(env(&[], home).token.as_deref(), Some("hf_home"));
        assert_eq!(
            env(&[("HF_TOKEN", "hf_env")], home).token.as_deref(),
            Some("hf_env"),
            "the variable wins over the file"
        );
        assert_eq!(
            env(&[("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")], home).token,
            None
        );
    }

    #[test]
    fn switches_and_timeouts_read_as_huggingface_hub_reads_them() {
        let e = env(&[], "/h");
        assert!(!e.offline && !e.quiet);
        assert_eq!(e.endpoint, vit::hub::DEFAULT_ENDPOINT);
        assert_eq!(e.etag_timeout, Duration::from_secs(10));
        let e = env(
            &[
                ("TRANSFORMERS_OFFLINE", "1"),
                ("HF_HUB_DISABLE_PROGRESS_BARS", "true"),
                ("HF_HUB_ETAG_TIMEOUT", "2.5"),
                ("HF_HUB_DOWNLOAD_TIMEOUT", "nonsense"),
                ("HF_ENDPOINT", "https://hf-mirror.com/"),
            ],
            "/h",
        );
        assert!(e.offline && e.quiet);
        assert_eq!(e.etag_timeout, Duration::from_millis(2500));
        assert_eq!(e.download_timeout, Duration::from_secs(10));
        assert_eq!(e.endpoint, "https://hf-mirror.com");
    }
}
