//! What the hub's API says of a revision, `GET {endpoint}/api/models/{org}/{name}/revision/
//! {revision}?blobs=true`: the commit it stands for, and the weights file's SHA-256 and size
//! (`siblings[].lfs`). A browser cannot read the headers of the 302 that carry them for the
//! trainer (`X-Linked-Etag`, `X-Linked-Size`), so the page asks the API and checks its
//! download against this answer.

use serde_json::Value;

use crate::error::{Result, VitError};

use super::model::WEIGHTS_FILE;

/// A revision as the API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The commit the revision (a branch, tag or commit) stands for: 40 hex digits.
    pub commit: String,
    /// `model.safetensors`' SHA-256 (lowercase hex).
    pub weights_sha256: String,
    /// `model.safetensors`' size in bytes.
    pub weights_bytes: u64,
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// Reads the API's answer (`origin` names it in messages).
pub fn read_revision(text: &str, origin: &str) -> Result<Revision> {
    let fail = |why: &str| VitError::Hub(format!("{origin}: {why}"));
    let root: Value = serde_json::from_str(text).map_err(|_| {
        if text.trim_start().starts_with('<') {
            fail("the hub answered with an HTML page, not its API's JSON")
        } else {
            fail("the hub's answer is not JSON")
        }
    })?;
    let commit = root["sha"]
        .as_str()
        .filter(|c| is_hex(c, 40))
        .ok_or_else(|| fail("the answer names no commit ('sha')"))?
        .to_ascii_lowercase();
    let siblings = root["siblings"]
        .as_array()
        .ok_or_else(|| fail("the answer lists no files ('siblings')"))?;
    let weights = siblings
        .iter()
        .find(|s| s["rfilename"].as_str() == Some(WEIGHTS_FILE))
        .ok_or_else(|| {
            fail(&format!(
                "the repo has no {WEIGHTS_FILE} (only timm's safetensors checkpoints are read, not pytorch_model.bin)"
            ))
        })?;
    let lfs = &weights["lfs"];
    let sha = lfs["sha256"]
        .as_str()
        .filter(|s| is_hex(s, 64))
        .ok_or_else(|| fail(&format!("the hub gives no SHA-256 for {WEIGHTS_FILE}")))?;
    let bytes = lfs["size"]
        .as_u64()
        .or_else(|| weights["size"].as_u64())
        .ok_or_else(|| fail(&format!("the hub gives no size for {WEIGHTS_FILE}")))?;
    Ok(Revision {
        commit,
        weights_sha256: sha.to_ascii_lowercase(),
        weights_bytes: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(weights: Value) -> String {
        serde_json::json!({
            "id": "timm/deit_tiny_patch16_224.fb_in1k",
            "sha": "A".repeat(40),
            "siblings": [{"rfilename": "config.json", "size": 700}, weights],
        })
        .to_string()
    }

    #[test]
    fn the_weights_checksum_and_size_are_read_from_their_lfs_entry() {
        let text = answer(serde_json::json!({
            "rfilename": "model.safetensors", "size": 22882080,
            "lfs": {"sha256": "B".repeat(64), "size": 22882080, "pointerSize": 135}
        }));
        let r = read_revision(&text, "api").unwrap();
        assert_eq!(r.commit, "a".repeat(40));
        assert_eq!(r.weights_sha256, "b".repeat(64));
        assert_eq!(r.weights_bytes, 22882080);
    }

    #[test]
    fn what_cannot_be_checked_is_refused_in_one_line() {
        let no_weights = answer(serde_json::json!({"rfilename": "pytorch_model.bin"}));
        let no_lfs = answer(serde_json::json!({"rfilename": "model.safetensors", "size": 9}));
        for (text, says) in [
            ("<html>sign in</html>", "HTML page"),
            ("{", "not JSON"),
            ("{\"siblings\": []}", "no commit"),
            (no_weights.as_str(), "no model.safetensors"),
            (no_lfs.as_str(), "no SHA-256"),
        ] {
            let e = read_revision(text, "api").unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
