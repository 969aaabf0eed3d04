//! Photos: taking one, preparing it for the current model, and the square the model sees,
//! which the person may move (the model, the patches and every map follow).

use image::RgbImage;
use vit::preprocess::{Crop, CropBox, MAX_SIDE, decode_image, prepare};

use crate::actions::inference::run_inference;
use crate::app::state::{App, NextCrop, Picture, Shared, spawn_task, step};
use crate::backends::Loaded;
use crate::pictures::animate::{self, Scene};
use crate::pictures::{crop, draw};
use crate::platform::dom::{human_bytes, prefers_reduced_motion, set_text, yield_now};
use crate::platform::net;

/// Files larger than this are refused before reading: no photo needs it, and reading it
/// would only make the tab struggle.
pub const MAX_IMAGE_BYTES: f64 = 64.0 * 1024.0 * 1024.0;
/// The photo is kept at most this large for drawing; the model's own view is separate.
const DISPLAY_SIDE: u32 = 1280;
/// The photo under the movable square is shown at most this tall, in CSS pixels.
const CROPPER_HEIGHT: f64 = 300.0;

pub async fn load_sample(app: Shared, name: String) -> Result<(), String> {
    let bytes = net::bytes(&format!("samples/{name}"))
        .await
        .map_err(|e| format!("The sample could not be loaded: {e}"))?;
    set_image(app, bytes, name).await
}

/// Takes new image bytes: prepares them for the current model (the centre square first),
/// restarts the animation and runs the model. A bad image leaves the last good one (and its
/// result) in place.
pub async fn set_image(app: Shared, bytes: Vec<u8>, name: String) -> Result<(), String> {
    step(&app, &format!("Reading {name}"));
    yield_now().await;
    let bytes = std::rc::Rc::new(bytes);
    let model = app.borrow().model.clone();
    let Some(model) = model else {
        // The model is still loading: check the image now, prepare it when the model lands.
        decode_image(&bytes).map_err(|e| image_error(&name, &e))?;
        app.borrow_mut().source = Some((bytes, name));
        return Ok(());
    };
    let picture = make_picture(&model, bytes.clone(), &name, None)?;
    {
        let mut a = app.borrow_mut();
        a.source = Some((bytes, name.clone()));
        show_picture(&mut a, picture);
    }
    run_inference(app).await
}

fn image_error(name: &str, e: &vit::VitError) -> String {
    format!("{name} could not be used: {e}")
}

fn make_picture(
    model: &Loaded,
    bytes: std::rc::Rc<Vec<u8>>,
    name: &str,
    chosen: Option<Crop>,
) -> Result<Picture, String> {
    let pre = model.manifest.preprocess();
    let mut prepared = prepare(&bytes, &pre).map_err(|e| image_error(name, &e))?;
    if chosen.is_some() {
        prepared
            .set_crop(chosen, &pre)
            .map_err(|e| image_error(name, &e))?;
    }
    let (w, h) = prepared.original.dimensions();
    let (photo, scale) = if w.max(h) > DISPLAY_SIDE {
        let scale = DISPLAY_SIDE as f32 / w.max(h) as f32;
        let (tw, th) = (
            ((w as f32 * scale).round() as u32).max(1),
            ((h as f32 * scale).round() as u32).max(1),
        );
        let small: RgbImage = image::imageops::thumbnail(&prepared.original, tw, th);
        (draw::bitmap(&small), tw as f32 / w as f32)
    } else {
        (draw::bitmap(&prepared.original), 1.0)
    };
    let crop = scaled(prepared.crop, scale);
    let view = draw::bitmap(&prepared.model_view);
    Ok(Picture {
        damage: vit::damage::truncation(&bytes),
        bytes,
        name: name.to_string(),
        prepared,
        photo,
        scale,
        crop,
        chosen,
        view,
    })
}

fn scaled(c: CropBox, scale: f32) -> CropBox {
    CropBox {
        x: c.x * scale,
        y: c.y * scale,
        side: c.side * scale,
    }
}

fn scene(a: &App, p: &Picture) -> Option<Scene> {
    let model = a.model.as_ref()?;
    Some(Scene {
        photo: p.photo.clone(),
        crop: p.crop,
        chosen: p.chosen.is_some(),
        original: p.prepared.original.dimensions(),
        view: p.view.clone(),
        config: model.manifest.config.clone(),
    })
}

fn show_picture(a: &mut App, picture: Picture) {
    if let Some(scene) = scene(a, &picture) {
        a.stage.borrow_mut().show(scene, prefers_reduced_motion());
        animate::kick(&a.stage);
    }
    let (w, h) = picture.prepared.original.dimensions();
    a.ui.current.set_inner_html("");
    let _ = a.ui.current.append_with_str_1("Now showing ");
    let name: web_sys::HtmlElement = crate::platform::dom::create("strong");
    set_text(&name, &picture.name);
    let _ = a.ui.current.append_child(&name);
    let _ = a.ui.current.append_with_str_1(&format!(
        " · {w}×{h} px, {}",
        human_bytes(picture.bytes.len() as f64)
    ));
    a.ui.mark_sample(&picture.name);
    a.picture = Some(picture);
    draw_cropper(a);
}

/// After a model change: the same image and square, prepared for the new model's size and
/// statistics.
pub fn reprepare(app: &Shared) -> Result<(), String> {
    let (model, source, chosen) = {
        let a = app.borrow();
        (
            a.model.clone(),
            a.source.clone(),
            a.picture.as_ref().and_then(|p| p.chosen),
        )
    };
    let (Some(model), Some((bytes, name))) = (model, source) else {
        return Ok(());
    };
    let picture = make_picture(&model, bytes, &name, chosen)?;
    show_picture(&mut app.borrow_mut(), picture);
    Ok(())
}

/// The photo under the movable square, sized to the card, with the square on it.
pub fn draw_cropper(a: &App) {
    let Some(p) = &a.picture else {
        a.ui.cropper.set_hidden(true);
        return;
    };
    a.ui.cropper.set_hidden(false);
    let (w, h) = p.prepared.original.dimensions();
    let room = a.ui.cropper.client_width() as f64;
    let room = if room > 0.0 { room } else { 320.0 };
    let (fw, fh) = crop::frame_size(w, h, room, CROPPER_HEIGHT);
    let style = a.ui.crop_frame.style();
    let _ = style.set_property("width", &format!("{fw}px"));
    let _ = style.set_property("height", &format!("{fh}px"));
    let ctx = draw::prepare(&a.ui.crop_photo, fw, fh);
    let (pw, ph) = (p.photo.width() as f64, p.photo.height() as f64);
    draw::blit(&ctx, &p.photo, (0.0, 0.0, pw, ph), (0.0, 0.0, fw, fh), true);
    a.ui.place_crop(p.square(), (w, h), p.chosen.is_some());
}

/// Asks for the model to look at `crop` (`None`: the centre square). The square moves at
/// once; the model follows one run at a time, always on the newest square, so a drag never
/// queues up runs (on the CPU that is a few runs a second or more).
pub fn move_crop(app: &Shared, crop: Option<Crop>) {
    let start = {
        let mut a = app.borrow_mut();
        let Some(p) = &a.picture else { return };
        let (w, h) = p.prepared.original.dimensions();
        let crop = crop.map(|c| c.clamped(w, h));
        let shown = crop.unwrap_or_else(|| Crop::centre(w, h));
        a.ui.place_crop(shown, (w, h), crop.is_some());
        a.crop_next = NextCrop::of(crop);
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
            let crop = match next {
                NextCrop::None => return Ok(()),
                NextCrop::Centre => None,
                NextCrop::Chosen(c) => Some(c),
            };
            apply_crop(&mut app.borrow_mut(), crop)?;
            run_inference(app.clone()).await?;
        }
    }
    .await;
    app.borrow_mut().crop_job = false;
    result
}

/// The model's view, the animation and the maps' photo region for another square.
fn apply_crop(a: &mut App, crop: Option<Crop>) -> Result<(), String> {
    let Some(model) = a.model.clone() else {
        return Ok(());
    };
    let Some(p) = a.picture.as_mut() else {
        return Ok(());
    };
    p.prepared
        .set_crop(crop, &model.manifest.preprocess())
        .map_err(|e| image_error(&p.name, &e))?;
    p.chosen = crop;
    p.crop = scaled(p.prepared.crop, p.scale);
    p.view = draw::bitmap(&p.prepared.model_view);
    let Some(p) = a.picture.as_ref() else {
        return Ok(());
    };
    if let Some(scene) = scene(a, p) {
        a.stage.borrow_mut().update(scene);
        animate::kick(&a.stage);
    }
    Ok(())
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
