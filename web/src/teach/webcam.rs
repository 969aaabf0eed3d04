//! The webcam: asked for only when the person presses a class's "Webcam" button, shown in a
//! `<video>`, and read a frame at a time. Every failure (no camera API, no camera, access
//! refused) comes back as a sentence; the rest of the page does not depend on it.

use image::RgbImage;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    CanvasRenderingContext2d, HtmlCanvasElement, HtmlVideoElement, MediaStream,
    MediaStreamConstraints, MediaStreamTrack,
};

use crate::platform::dom::{create, js_message, window};

/// Largest side of a frame kept: the model's square is made from it, and no model here reads
/// more than this.
const FRAME_SIDE: u32 = 512;

/// Asks for the camera and shows it in `video`; the stream is the caller's to [`stop`].
pub async fn open(video: &HtmlVideoElement) -> Result<MediaStream, String> {
    let navigator = window().navigator();
    let has = js_sys::Reflect::get(&navigator, &"mediaDevices".into())
        .is_ok_and(|d| !d.is_undefined() && !d.is_null());
    if !has {
        return Err("This browser offers no camera to pages like this one (cameras need a secure page: https or localhost). Photos from files, drops and pastes still work.".into());
    }
    let devices = navigator
        .media_devices()
        .map_err(|e| format!("The camera is not available: {}", js_message(&e)))?;
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&false.into());
    let video_wish = js_sys::Object::new();
    let ideal = |v: f64| {
        let o = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&o, &"ideal".into(), &v.into());
        o
    };
    let _ = js_sys::Reflect::set(&video_wish, &"width".into(), &ideal(640.0));
    let _ = js_sys::Reflect::set(&video_wish, &"height".into(), &ideal(480.0));
    constraints.set_video(&video_wish);
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|e| refusal(&e))?;
    let stream: MediaStream = JsFuture::from(promise)
        .await
        .map_err(|e| refusal(&e))?
        .dyn_into()
        .map_err(|_| "The camera answered with something that is not a video stream.")?;
    video.set_muted(true);
    video.set_src_object(Some(&stream));
    if let Ok(playing) = video.play() {
        // Autoplay of a muted stream is allowed; a refusal here still leaves the preview
        // starting on its own (`autoplay` in index.html).
        let _ = JsFuture::from(playing).await;
    }
    Ok(stream)
}

/// Why `getUserMedia` failed, in the person's words.
fn refusal(e: &wasm_bindgen::JsValue) -> String {
    let name = js_sys::Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    let why = match name.as_str() {
        "NotAllowedError" | "SecurityError" => {
            "access to the camera was refused (the browser's site settings can allow it)".into()
        }
        "NotFoundError" | "OverconstrainedError" => "no camera was found".into(),
        "NotReadableError" | "AbortError" => {
            "the camera is busy or failed (another program may be using it)".into()
        }
        _ => js_message(e),
    };
    format!(
        "The webcam could not be started: {why}. Photos from files, drops and pastes still work."
    )
}

/// Stops every track of `stream` (the camera's light goes off).
pub fn stop(stream: &MediaStream) {
    for track in stream.get_tracks().iter() {
        if let Ok(track) = track.dyn_into::<MediaStreamTrack>() {
            track.stop();
        }
    }
}

/// The centre square of the frame on show, at most [`FRAME_SIDE`] pixels; `None` until the
/// video has a frame.
pub fn frame(video: &HtmlVideoElement) -> Option<RgbImage> {
    let (w, h) = (video.video_width(), video.video_height());
    if w == 0 || h == 0 {
        return None;
    }
    let side = w.min(h);
    let out = side.min(FRAME_SIDE);
    let canvas: HtmlCanvasElement = create("canvas");
    canvas.set_width(out);
    canvas.set_height(out);
    let ctx: CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    ctx.draw_image_with_html_video_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
        video,
        ((w - side) / 2) as f64,
        ((h - side) / 2) as f64,
        side as f64,
        side as f64,
        0.0,
        0.0,
        out as f64,
        out as f64,
    )
    .ok()?;
    let rgba = ctx
        .get_image_data(0.0, 0.0, out as f64, out as f64)
        .ok()?
        .data();
    let rgb: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    RgbImage::from_raw(out, out, rgb)
}
