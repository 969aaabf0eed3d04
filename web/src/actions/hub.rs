//! Hub models by name (`ORG/NAME[@REVISION]`): the engine fetches one (or finds it kept) and
//! checks it (`engine::hub`); the page shows the steps and the download, installs the model as
//! any other, lists the models kept for offline visits and forgets them. A failure leaves the
//! current model in use.

use vit::hub::{HubName, WEIGHTS_FILE};

use crate::actions::loading::{
    begin_model_request, install, load_source, restore_model_select, switch_to_cached,
};
use crate::app::state::{Origin, Shared, Source};
use crate::platform::dom::{human_bytes, now};
use crate::protocol::{Reply, Request};
use crate::view::model_info::fill_model_select;
use crate::worker::envelope::Attachments;

/// Fetches (or finds kept) the hub model `text` names and makes it the current model.
pub async fn load_hub(app: Shared, text: String) -> Result<(), String> {
    let request = begin_model_request(&app);
    let name = match HubName::parse(&text) {
        Ok(name) => name,
        Err(e) => {
            restore_model_select(&app);
            return Err(e.to_string());
        }
    };
    let key = name.to_string();
    if switch_to_cached(&app, &key).await? {
        return Ok(());
    }
    let start = now();
    app.borrow_mut().hub.steps.clear();
    let result = load_source(&app, Source::Hub(key.clone())).await;
    app.borrow().ui.set_progress(None);
    match result {
        Ok(model) => {
            let bare = &key[vit::hub::PREFIX.len()..];
            install(app.clone(), Origin::Hub, bare, model, request).await?;
            let total = now() - start;
            app.borrow_mut()
                .hub
                .steps
                .push(("to the first result".to_string(), total));
            Ok(())
        }
        Err(e) => {
            restore_model_select(&app);
            Err(format!(
                "{name} could not be loaded: {e}. The current model stays."
            ))
        }
    }
}

/// Lists the hub models kept from earlier visits (at startup, and after forgetting them).
pub async fn refresh_kept(app: &Shared) {
    let (engine, endpoint) = {
        let a = app.borrow();
        (a.engine.clone(), a.hub.endpoint.clone())
    };
    let kept = match engine.call(Request::Kept, Attachments::default()).await {
        Ok((Reply::Kept(list), _)) => list,
        _ => Vec::new(),
    };
    let kept: Vec<String> = kept
        .iter()
        .filter_map(|(url, _)| kept_name(url, &endpoint))
        .collect();
    let mut a = app.borrow_mut();
    a.hub.kept = kept;
    fill_model_select(&a);
}

/// The hub model whose weights `url` is, as the select names it.
fn kept_name(url: &str, endpoint: &str) -> Option<String> {
    let rest = url.strip_prefix(endpoint.trim_end_matches('/'))?;
    let rest = rest.strip_suffix(&format!("/{WEIGHTS_FILE}"))?;
    let (repo, revision) = rest.trim_start_matches('/').split_once("/resolve/")?;
    let revision = revision.replace("%2F", "/");
    HubName::parse(&format!("{repo}@{revision}"))
        .ok()
        .map(|n| n.to_string())
}

/// Drops every kept hub model and says how much that freed.
pub async fn forget(app: Shared) -> Result<(), String> {
    let engine = app.borrow().engine.clone();
    let (reply, _) = engine
        .call(Request::ForgetKept, Attachments::default())
        .await?;
    let Reply::Forgot {
        files,
        bytes,
        tunings,
    } = reply
    else {
        return Err(format!("the engine answered {reply:?} to forgetting"));
    };
    refresh_kept(&app).await;
    let mut message = if files == 0 {
        "No downloaded models were kept".to_string()
    } else {
        format!(
            "Forgot the downloaded models: {} freed",
            human_bytes(bytes as f64)
        )
    };
    if tunings > 0 {
        message += " · and WebGPU's tuned kernels: the next visit tunes them again";
    }
    crate::app::state::note(&app, Some(message));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_weights_name_their_model() {
        let e = "http://127.0.0.1:9/";
        let n = |s: &str| kept_name(s, e);
        assert_eq!(
            n("http://127.0.0.1:9/timm/deit/resolve/main/model.safetensors").as_deref(),
            Some("hf-hub:timm/deit")
        );
        assert_eq!(
            n("http://127.0.0.1:9/timm/deit/resolve/v1%2Fa/model.safetensors").as_deref(),
            Some("hf-hub:timm/deit@v1/a")
        );
        assert_eq!(
            n("http://127.0.0.1:9/timm/deit/resolve/main/config.json"),
            None
        );
        assert_eq!(
            n("http://elsewhere/timm/deit/resolve/main/model.safetensors"),
            None
        );
    }
}
