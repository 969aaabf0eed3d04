//! Running the current model on the current picture, and keeping the result.

use std::rc::Rc;

use vit::inference::{top_k, verdict};
use vit::preprocess::is_blank;

use crate::app::state::{Shared, Shown, step};
use crate::backends::{self, Backend};
use crate::platform::dom::{now, sleep, yield_now};
use crate::view::results::render_results;

/// Runs the current model on the current picture with the chosen backend, then shows the
/// result, unless a newer request superseded it meanwhile.
pub async fn run_inference(app: Shared) -> Result<(), String> {
    let job = {
        let mut a = app.borrow_mut();
        let (Some(model), Some(picture)) = (a.model.clone(), a.picture.as_ref()) else {
            return Ok(());
        };
        let chw = picture.prepared.chw.clone();
        let name = picture.name.clone();
        let damage = picture.damage.clone();
        let crop = picture.chosen;
        let blank = is_blank(&picture.prepared.model_view);
        a.inference_request += 1;
        (
            model,
            chw,
            name,
            damage,
            crop,
            blank,
            a.backend(),
            a.inference_request,
            a.backends.clone(),
        )
    };
    let (model, chw, image, damage, crop, blank, backend, request, backends) = job;
    if backends.device(backend).is_none() {
        return Err(format!(
            "WebGPU is not available here ({}); the CPU backend still works.",
            backends.gpu_problem.as_deref().unwrap_or("no adapter")
        ));
    }
    if backend == Backend::WebGpu && app.borrow().timing > 0 {
        // One user of the GPU at a time: the background timing is compiling its kernels.
        step(&app, "Waiting for WebGPU's test run to end");
        while app.borrow().timing > 0 {
            sleep(50).await;
        }
    }
    step(&app, &format!("Running on {}", backend.label()));
    // Let the animation draw a frame before the (synchronous, on the CPU) forward pass.
    yield_now().await;
    let output = backends::infer(&model, &backends, backend, &chw)
        .await
        .map_err(|e| format!("The model failed on {}: {e}", backend.label()))?;
    let mut a = app.borrow_mut();
    let current = a.model.as_ref().is_some_and(|m| Rc::ptr_eq(m, &model));
    if request != a.inference_request || !current {
        return Ok(());
    }
    a.runs += 1;
    let top = top_k(&output.probs, &model.manifest.labels, 5);
    let rollout = output.attention.rollout(a.heat.fusion, a.heat.discard);
    let heads = output.attention.last_layer_cls_maps();
    a.shown = Some(Shown {
        top,
        verdict: verdict(&output.probs, blank),
        image,
        damage,
        model: model.manifest.name.clone(),
        crop,
        rollout,
        heads,
        run: a.runs,
        output,
    });
    if a.milestones.first_result.is_none() {
        a.milestones.first_result = Some(now());
    }
    crate::view::model_info::show_model(&a);
    render_results(&a);
    drop(a);
    crate::actions::explore::after_result(&app);
    Ok(())
}
