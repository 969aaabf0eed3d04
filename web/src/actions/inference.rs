//! Running the current model on the current picture (in the engine), and keeping the result;
//! the rollout drawn again with other settings.

use std::rc::Rc;

use vit::inference::top_k;
use vit::rollout::Heatmap;

use crate::actions::picture::reprepare;
use crate::app::state::{Shared, Shown, step};
use crate::platform::dom::{now, sleep};
use crate::protocol::{Backend, Map, Reply, Request};
use crate::view::results::{render_heat, render_results};
use crate::worker::envelope::Attachments;

/// Runs the current model on the current picture with the chosen backend, then shows the
/// result, unless a newer request superseded it meanwhile.
pub async fn run_inference(app: Shared) -> Result<(), String> {
    let prepared_for = {
        let a = app.borrow();
        let (Some(model), Some(picture)) = (a.model.as_ref(), a.picture.as_ref()) else {
            return Ok(());
        };
        picture.model == model.id && picture.generation == model.generation
    };
    if !prepared_for {
        reprepare(&app).await?;
    }
    let job = {
        let mut a = app.borrow_mut();
        let (Some(model), Some(picture)) = (a.model.clone(), a.picture.as_ref()) else {
            return Ok(());
        };
        let job = (
            picture.id,
            picture.name.clone(),
            picture.damage.clone(),
            picture.chosen,
            a.backend(),
            a.heat.fusion,
            a.heat.discard,
        );
        a.inference_request += 1;
        (model, job, a.inference_request, a.engine.clone())
    };
    let (model, (picture, image, damage, crop, backend, fusion, discard), request, engine) = job;
    if backend == Backend::WebGpu && !app.borrow().ready.webgpu {
        let a = app.borrow();
        return Err(format!(
            "WebGPU is not available here ({}); the CPU backend still works.",
            a.ready.webgpu_problem.as_deref().unwrap_or("no adapter")
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
    let ask = Request::Infer {
        picture,
        model: model.id,
        backend,
        fusion,
        discard,
    };
    let result = engine.call(ask, Attachments::default()).await;
    let mut a = app.borrow_mut();
    let current = a.model.as_ref().is_some_and(|m| Rc::ptr_eq(m, &model));
    let shown = a.picture.as_ref().map(|p| p.id);
    if request != a.inference_request || !current || shown != Some(picture) {
        // A newer run, model or photo came meanwhile: this answer is no longer wanted.
        return Ok(());
    }
    let answer = match result {
        Ok((Reply::Answer(answer), _)) => *answer,
        // The engine took a newer photo meanwhile (it keeps only the newest), which is on its
        // way to the screen.
        Err(_) if a.engine_picture.map(|(id, _)| id) != Some(picture) => return Ok(()),
        Ok((other, _)) => return Err(format!("the engine answered {other:?} to a photo")),
        Err(e) => return Err(format!("The model failed on {}: {e}", backend.label())),
    };
    if let Some(line) = answer.fell_back.clone() {
        // WebGPU refused a shader: the CPU answers from now on, and the status says why.
        a.ready.webgpu = false;
        a.ready.webgpu_problem = Some(line.clone());
        a.timings.gpu = None;
        a.note = Some(line);
    }
    a.runs += 1;
    let top = top_k(&answer.probs, &model.manifest.labels, 5);
    a.shown = Some(Shown {
        answer: answer.answer,
        generation: engine.generation(),
        backend: answer.backend,
        ms: answer.ms,
        probs: answer.probs,
        layers: answer.layers,
        heads_count: answer.heads,
        tokens: answer.tokens,
        top,
        verdict: answer.verdict,
        image,
        damage,
        model: model.manifest.name.clone(),
        crop,
        rollout: heatmap(answer.rollout),
        heads: answer.head_maps.into_iter().map(heatmap).collect(),
        run: a.runs,
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

pub fn heatmap(m: Map) -> Heatmap {
    Heatmap {
        grid: m.grid,
        values: m.values,
    }
}

/// The heat-map settings changed: the engine computes the rollout again from the answer's
/// maps (no model run), and "Where it looked" is drawn again. One request at a time, then
/// one more if the settings moved meanwhile.
pub fn reheat(app: &Shared) {
    {
        let mut a = app.borrow_mut();
        if a.heat.asking {
            return;
        }
        a.heat.asking = true;
    }
    let app = app.clone();
    wasm_bindgen_futures::spawn_local(async move {
        loop {
            let job = {
                let a = app.borrow();
                a.shown
                    .as_ref()
                    .filter(|s| s.generation == a.engine.generation())
                    .map(|s| {
                        (
                            s.answer,
                            s.run,
                            a.heat.fusion,
                            a.heat.discard,
                            a.engine.clone(),
                        )
                    })
            };
            let Some((answer, run, fusion, discard, engine)) = job else {
                break;
            };
            let ask = Request::Heat {
                answer,
                fusion,
                discard,
            };
            let map = match engine.call(ask, Attachments::default()).await {
                Ok((Reply::Heat(map), _)) => map,
                Ok((other, _)) => {
                    web_sys::console::warn_1(
                        &format!("the engine answered {other:?} to a heat map").into(),
                    );
                    break;
                }
                Err(e) => {
                    web_sys::console::warn_1(&e.into());
                    break;
                }
            };
            let mut a = app.borrow_mut();
            if let Some(s) = a.shown.as_mut().filter(|s| s.run == run) {
                s.rollout = heatmap(map);
            }
            render_heat(&a);
            if (a.heat.fusion, a.heat.discard) == (fusion, discard) {
                break;
            }
        }
        app.borrow_mut().heat.asking = false;
    });
}
