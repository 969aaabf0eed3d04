//! The engine's last answers: each forward pass's attention maps, kept so that the page's heat
//! maps and the explorer's questions are answered without running the model again, and each
//! class's relevance computed once per answer. Only the newest few are kept (a ViT-S/16 pass's
//! maps are 11 MB).

use std::collections::VecDeque;

use vit::config::Pooling;
use vit::explain::{Heads, Method, Query, Relevance, Token, explain};
use vit::rollout::{AttentionMaps, HeadFusion, Heatmap};

use crate::protocol::{AnswerId, Backend, Map, ModelId, Question};

/// Answers kept: the one on screen, and the one before while a newer pass is under way.
const KEPT: usize = 2;

/// One forward pass's maps, and what a relevance of it needs.
pub struct Kept {
    pub id: AnswerId,
    pub model: ModelId,
    pub backend: Backend,
    pub pooling: Pooling,
    pub attention: AttentionMaps,
    /// The normalised input, for a relevance's backward pass.
    pub chw: Vec<f32>,
    /// Relevances computed, by class.
    pub relevance: Vec<(usize, Relevance)>,
}

#[derive(Default)]
pub struct Answers {
    kept: VecDeque<Kept>,
    next: AnswerId,
}

impl Answers {
    /// Keeps a new answer, dropping the oldest beyond [`KEPT`]; returns its id.
    pub fn keep(&mut self, mut answer: Kept) -> AnswerId {
        self.next += 1;
        answer.id = self.next;
        self.kept.push_back(answer);
        while self.kept.len() > KEPT {
            self.kept.pop_front();
        }
        self.next
    }

    pub fn get(&self, id: AnswerId) -> Result<&Kept, String> {
        self.kept
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| "that answer is no longer kept: the photo was answered again".into())
    }

    pub fn get_mut(&mut self, id: AnswerId) -> Result<&mut Kept, String> {
        self.kept
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| "that answer is no longer kept: the photo was answered again".into())
    }

    /// Drops every answer of `model` (it was unloaded).
    pub fn forget_model(&mut self, model: ModelId) {
        self.kept.retain(|a| a.model != model);
    }
}

impl Kept {
    /// Rollout with these settings, as "Where it looked" draws it.
    pub fn heat(&self, fusion: HeadFusion, discard: f32) -> Map {
        map(self.attention.rollout(fusion, discard))
    }

    /// The last layer's class-token map of each head.
    pub fn head_maps(&self) -> Vec<Map> {
        self.attention
            .last_layer_cls_maps()
            .into_iter()
            .map(map)
            .collect()
    }

    /// The relevance of `class`, if computed.
    pub fn relevance_of(&self, class: usize) -> Option<&Relevance> {
        self.relevance
            .iter()
            .find(|(c, _)| *c == class)
            .map(|(_, r)| r)
    }

    /// The explorer's map for `question` (a relevance question needs its class's relevance
    /// computed first: [`Self::relevance_of`]).
    pub fn explain(&self, question: &Question) -> Result<Vec<f32>, String> {
        let query = query(question)?;
        let relevance = match query.method {
            Method::Relevance => {
                let class = question
                    .class
                    .ok_or("a relevance question names no class")?;
                Some(
                    self.relevance_of(class)
                        .ok_or("that class's relevance is not computed")?,
                )
            }
            _ => None,
        };
        explain(&self.attention, relevance, self.pooling, &query)
            .map(|m| m.values)
            .map_err(|e| e.to_string())
    }
}

/// `vit::explain`'s query from the question's words.
pub fn query(q: &Question) -> Result<Query, String> {
    Ok(Query {
        method: q.method.parse::<Method>()?,
        layer: q.layer,
        heads: q.heads.parse::<Heads>()?,
        token: q.token.parse::<Token>()?,
        reverse: q.reverse,
    })
}

fn map(h: Heatmap) -> Map {
    Map {
        grid: h.grid,
        values: h.values,
    }
}
