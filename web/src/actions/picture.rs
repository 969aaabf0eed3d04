//! The photo the engine holds, prepared for the current model: given to the engine (again, if
//! a new engine never had it), prepared on a square, and drawn: the animation's scene, the
//! "Now showing" line and the photo under the movable square.

use image::RgbImage;
use vit::preprocess::{Crop, CropBox};

use crate::app::state::{App, Model, Picture, Shared};
use crate::pictures::animate::{self, Scene};
use crate::pictures::{crop, draw};
use crate::platform::dom::{human_bytes, prefers_reduced_motion, set_text};
use crate::protocol::{PictureId, Prepared, Reply, Request};
use crate::worker::envelope::Attachments;

/// The photo under the movable square is shown at most this tall, in CSS pixels.
const CROPPER_HEIGHT: f64 = 300.0;

/// Sends photo bytes to the engine, which decodes and keeps them; their id.
pub async fn give_to_engine(app: &Shared, bytes: &[u8], name: &str) -> Result<PictureId, String> {
    let engine = app.borrow().engine.clone();
    let id = {
        let mut a = app.borrow_mut();
        a.next_picture += 1;
        a.next_picture
    };
    let mut out = Attachments::default();
    let request = Request::Picture {
        picture: id,
        name: name.to_string(),
        bytes: out.bytes(bytes),
    };
    engine.call(request, out).await?;
    app.borrow_mut().engine_picture = Some((id, engine.generation()));
    Ok(id)
}

/// The id of the photo the engine holds, given to it again if this engine never had it.
async fn held_picture(app: &Shared) -> Result<Option<PictureId>, String> {
    let (held, generation, source) = {
        let a = app.borrow();
        (a.engine_picture, a.engine.generation(), a.source.clone())
    };
    match (held, source) {
        (Some((id, g)), _) if g == generation => Ok(Some(id)),
        (_, Some((bytes, name))) => give_to_engine(app, &bytes, &name).await.map(Some),
        (_, None) => Ok(None),
    }
}

/// The engine's preparation of photo `id` for `model` on `crop`, as a picture the page
/// draws; `photo` is the drawing of the photo when the page already has it.
pub async fn prepare(
    app: &Shared,
    id: PictureId,
    model: &Model,
    crop: Option<Crop>,
    photo: Option<(web_sys::HtmlCanvasElement, f32)>,
) -> Result<Picture, String> {
    let engine = app.borrow().engine.clone();
    let request = Request::Prepare {
        picture: id,
        model: model.id,
        crop,
        photo: photo.is_none(),
    };
    let (reply, received) = engine.call(request, Attachments::default()).await?;
    let Reply::Prepared(p) = reply else {
        return Err(format!("the engine answered {reply:?} to a photo"));
    };
    let Prepared {
        photo: drawn,
        photo_size,
        original,
        crop: region,
        view,
        side,
        blank,
        damage,
    } = p;
    let bitmap = |bytes: Vec<u8>, (w, h): (u32, u32)| {
        RgbImage::from_raw(w, h, bytes)
            .map(|img| draw::bitmap(&img))
            .ok_or_else(|| "the engine sent a picture of the wrong size".to_string())
    };
    let (photo, scale) = match (photo, drawn) {
        (Some(kept), _) => kept,
        (None, Some(a)) => (
            bitmap(received.bytes(a)?, photo_size)?,
            photo_size.0 as f32 / original.0.max(1) as f32,
        ),
        (None, None) => return Err("the engine sent no picture of the photo".into()),
    };
    let (bytes, name) = app.borrow().source.clone().ok_or("the photo is gone")?;
    Ok(Picture {
        id,
        bytes,
        name,
        original,
        photo,
        scale,
        crop: scaled(region, scale),
        chosen: crop,
        view: bitmap(received.bytes(view)?, (side, side))?,
        blank,
        damage,
        model: model.id,
        generation: engine.generation(),
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
        original: p.original,
        view: p.view.clone(),
        config: model.manifest.config.clone(),
    })
}

pub fn show_picture(a: &mut App, picture: Picture) {
    if let Some(scene) = scene(a, &picture) {
        a.stage.borrow_mut().show(scene, prefers_reduced_motion());
        animate::kick(&a.stage);
    }
    let (w, h) = picture.original;
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

/// After a model change (or a new engine): the same photo and square, prepared for the
/// current model's size and statistics.
pub async fn reprepare(app: &Shared) -> Result<(), String> {
    let (model, chosen, photo) = {
        let a = app.borrow();
        let p = a.picture.as_ref();
        (
            a.model.clone(),
            p.and_then(|p| p.chosen),
            p.map(|p| (p.photo.clone(), p.scale)),
        )
    };
    let Some(model) = model else {
        return Ok(());
    };
    let Some(id) = held_picture(app).await? else {
        return Ok(());
    };
    let picture = prepare(app, id, &model, chosen, photo).await?;
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
    let (w, h) = p.original;
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

/// The model's view, the animation and the maps' photo region for another square.
pub async fn apply_crop(app: &Shared, crop: Option<Crop>) -> Result<(), String> {
    let (model, photo) = {
        let a = app.borrow();
        let (Some(model), Some(p)) = (a.model.clone(), a.picture.as_ref()) else {
            return Ok(());
        };
        (model, (p.photo.clone(), p.scale))
    };
    let Some(id) = held_picture(app).await? else {
        return Ok(());
    };
    let picture = prepare(app, id, &model, crop, Some(photo)).await?;
    let mut a = app.borrow_mut();
    a.picture = Some(picture);
    let Some(p) = a.picture.as_ref() else {
        return Ok(());
    };
    if let Some(scene) = scene(&a, p) {
        a.stage.borrow_mut().update(scene);
        animate::kick(&a.stage);
    }
    Ok(())
}
