//! A hub model's name as timm writes it, `hf-hub:ORG/NAME[@REVISION]`, and where the hub
//! serves its files (`{endpoint}/{org}/{name}/resolve/{revision}/{file}`).

use crate::error::{Result, VitError};

/// timm's prefix for a hub model (`timm.create_model('hf-hub:timm/...')`).
pub const PREFIX: &str = "hf-hub:";
/// The hub everyone means; `HF_ENDPOINT` replaces it.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
pub const DEFAULT_REVISION: &str = "main";

/// `ORG/NAME` at a revision (a branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubName {
    pub org: String,
    pub name: String,
    pub revision: String,
}

impl HubName {
    /// `hf-hub:ORG/NAME[@REVISION]` when `text` starts with the prefix, else `None` (a path).
    pub fn from_model_arg(text: &str) -> Option<Result<Self>> {
        text.strip_prefix(PREFIX).map(Self::parse)
    }

    /// `ORG/NAME[@REVISION]`, with or without the `hf-hub:` prefix.
    pub fn parse(text: &str) -> Result<Self> {
        let bare = text.strip_prefix(PREFIX).unwrap_or(text).trim();
        let bad = |why: &str| {
            VitError::Hub(format!(
                "'{text}' is not a hub model name: {why}; write it as hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION, e.g. hf-hub:timm/deit_tiny_patch16_224.fb_in1k"
            ))
        };
        let (repo, revision) = match bare.split_once('@') {
            Some((repo, rev)) => (repo, rev),
            None => (bare, DEFAULT_REVISION),
        };
        let Some((org, name)) = repo.split_once('/') else {
            return Err(bad("it has no '/' between the organisation and the model"));
        };
        // The hub's own rule for repo ids: letters, digits, '-', '_', '.', no '--' or '..'.
        let part_ok = |p: &str| {
            (1..=96).contains(&p.len())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !p.starts_with(['-', '.'])
                && !p.contains("--")
                && !p.contains("..")
        };
        if !part_ok(org) || !part_ok(name) {
            return Err(bad(
                "each part is 1 to 96 letters, digits, '-', '_' or '.', not starting with '-' or '.'",
            ));
        }
        let rev_ok = (1..=256).contains(&revision.len())
            && revision
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            && !revision.contains("..");
        if !rev_ok {
            return Err(bad("the revision is a branch, tag or commit name"));
        }
        Ok(Self {
            org: org.into(),
            name: name.into(),
            revision: revision.into(),
        })
    }

    /// `ORG/NAME`, the hub's repo id.
    pub fn repo_id(&self) -> String {
        format!("{}/{}", self.org, self.name)
    }

    /// Where the hub serves `file` of this revision (a branch with '/' in it is escaped).
    pub fn file_url(&self, endpoint: &str, file: &str) -> String {
        format!(
            "{}/{}/{}/resolve/{}/{file}",
            endpoint.trim_end_matches('/'),
            self.org,
            self.name,
            self.revision.replace('/', "%2F")
        )
    }

    /// Where the hub's API describes this revision: its commit and its files' SHA-256 and
    /// sizes ([`super::revision`]).
    pub fn revision_url(&self, endpoint: &str) -> String {
        format!(
            "{}/api/models/{}/{}/revision/{}?blobs=true",
            endpoint.trim_end_matches('/'),
            self.org,
            self.name,
            self.revision.replace('/', "%2F")
        )
    }

    /// The model pair it becomes by default: the repo's name (timm's names are valid ones).
    pub fn pair_name(&self) -> String {
        self.name.clone()
    }
}

impl std::fmt::Display for HubName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}/{}", self.org, self.name)?;
        if self.revision != DEFAULT_REVISION {
            write!(f, "@{}", self.revision)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::CONFIG_FILE;

    #[test]
    fn names_parse_with_revision_and_print_back() {
        let n = HubName::parse("hf-hub:timm/deit_tiny_patch16_224.fb_in1k").unwrap();
        assert_eq!(n.repo_id(), "timm/deit_tiny_patch16_224.fb_in1k");
        assert_eq!(n.revision, "main");
        assert_eq!(n.to_string(), "hf-hub:timm/deit_tiny_patch16_224.fb_in1k");
        assert_eq!(
            n.file_url("http://127.0.0.1:9/", CONFIG_FILE),
            "http://127.0.0.1:9/timm/deit_tiny_patch16_224.fb_in1k/resolve/main/config.json"
        );
        let r = HubName::parse("timm/x@refs/pr/1").unwrap();
        assert_eq!(r.revision, "refs/pr/1");
        assert!(
            r.file_url("http://h", "a")
                .contains("/resolve/refs%2Fpr%2F1/a")
        );
        assert_eq!(r.to_string(), "hf-hub:timm/x@refs/pr/1");
        assert!(HubName::from_model_arg("www/models/a.json").is_none());
        for bad in [
            "timm", "/x", "timm/", "a/b/c", "a/../b", "a/b@", "a/b@x y", "a/-b",
        ] {
            let e = HubName::parse(bad).unwrap_err().to_string();
            assert!(e.contains("hf-hub:ORG/NAME"), "{bad}: {e}");
        }
    }
}
