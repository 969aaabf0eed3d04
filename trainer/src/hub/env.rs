//! Where and how to reach the hub ([`HubEnv`]), read from huggingface_hub's environment
//! variables, and the repo's folder in its cache.

use std::fs;
use std::path::{Path, PathBuf};

use vit::hub::HubName;

/// Where and how to reach the hub, from huggingface_hub's environment variables.
#[derive(Debug, Clone)]
pub struct HubEnv {
    pub endpoint: String,
    pub cache: PathBuf,
    pub token: Option<String>,
    pub offline: bool,
}

/// huggingface_hub's reading of a yes/no variable.
fn is_true(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE"))
}

impl HubEnv {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("huggingface")
        });
        let token_file = var("HF_TOKEN_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join("token"));
        let token = var("HF_TOKEN").or_else(|| {
            fs::read_to_string(token_file)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        });
        Self {
            endpoint: var("HF_ENDPOINT").unwrap_or_else(|| vit::hub::DEFAULT_ENDPOINT.into()),
            cache: var("HF_HUB_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join("hub")),
            token,
            offline: is_true(var("HF_HUB_OFFLINE")),
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
    use super::*;

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
}
