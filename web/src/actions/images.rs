//! Photos: taking one (a sample, a file), having the engine decode it and prepare it for the
//! current model (`picture`), and the square the model sees, which the person may move (the
//! model, the patches and every map follow). The engine keeps the decoded photo, so a moved
//! square or another model costs no decoding; the page keeps the bytes only to give them to a
//! new engine.

use std::rc::Rc;

use vit::preprocess::{Crop, MAX_SIDE};

use crate::actions::inference::run_inference;
use crate::actions::picture::{apply_crop, give_to_engine, prepare, show_picture};
use crate::app::state::{NextCrop, Shared, spawn_task, step};
use crate::platform::dom::human_bytes;
use crate::platform::net;

/// Files larger than this are refused before reading: no photo needs it, and reading it
/// would only make the tab struggle.
pub const MAX_IMAGE_BYTES: f64 = 64.0 * 1024.0 * 1024.0;

pub async fn load_sample(app: Shared, name: String) -> Result<(), String> {
    let bytes = net::bytes(&format!("samples/{name}"))
        .await
        .map_err(|e| format!("The sample could not be loaded: {e}"))?;
    set_image(app, bytes, name).await
}

/// Takes new image bytes: the engine decodes them and prepares them for the current model
/// (the centre square first), then the animation restarts and the model runs. A bad image
/// leaves the last good one (and its result) in place.
pub async fn set_image(app: Shared, bytes: Vec<u8>, name: String) -> Result<(), String> {
    step(&app, &format!("Reading {name}"));
    let bytes = Rc::new(bytes);
    let id = give_to_engine(&app, &bytes, &name).await?;
    app.borrow_mut().source = Some((bytes, name));
    let model = app.borrow().model.clone();
    let Some(model) = model else {
        // The model is still loading: the photo is checked, and prepared when it lands.
        return Ok(());
    };
    // The engine keeps only the newest photo it took: one taken meanwhile replaces this one.
    let replaced = |app: &Shared| app.borrow().engine_picture.map(|(i, _)| i) != Some(id);
    let picture = match prepare(&app, id, &model, None, None).await {
        Ok(p) => p,
        Err(_) if replaced(&app) => return Ok(()),
        Err(e) => return Err(e),
    };
    if replaced(&app) {
        return Ok(());
    }
    show_picture(&mut app.borrow_mut(), picture);
    run_inference(app).await
}

/// Asks for the model to look at `crop` (`None`: the centre square). The square moves at
/// once; the model follows one run at a time, always on the newest square, so a drag never
/// queues up runs (on the CPU that is a few runs a second or more).
pub fn move_crop(app: &Shared, crop: Option<Crop>) {
    let start = {
        let mut a = app.borrow_mut();
        let Some((current, (w, h))) = a.picture.as_ref().map(|p| (p.square(), p.original)) else {
            return;
        };
        let crop = crop.map(|c| c.clamped(w, h));
        a.crop_next = NextCrop::of(crop);
        let shown = a.crop_next.square(current, (w, h));
        a.ui.place_crop(shown, (w, h), crop.is_some());
        !std::mem::replace(&mut a.crop_job, true)
    };
    if start {
        spawn_task(app, "Following the square", follow_crop(app.clone()));
    }
}

async fn follow_crop(app: Shared) -> Result<(), String> {
    let result = async {
        loop {
            let next = std::mem::replace(&mut app.borrow_mut().crop_next, NextCrop::None);
            let Some(crop) = next.asked() else {
                return Ok(());
            };
            apply_crop(&app, crop).await?;
            run_inference(app.clone()).await?;
        }
    }
    .await;
    app.borrow_mut().crop_job = false;
    result
}

/// Checks a dropped or picked file's size before reading it.
pub fn check_size(name: &str, bytes: f64) -> Result<(), String> {
    if bytes > MAX_IMAGE_BYTES {
        return Err(format!(
            "{name} is {}: the page takes images up to {} (and at most {MAX_SIDE}×{MAX_SIDE} pixels).",
            human_bytes(bytes),
            human_bytes(MAX_IMAGE_BYTES)
        ));
    }
    Ok(())
}
