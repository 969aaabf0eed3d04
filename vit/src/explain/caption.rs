//! The explain question in words: the one caption of a [`Query`], which `trainer explain`
//! prints and the page's explorer shows, so that both name the same question the same way.

use crate::config::{Pooling, VitConfig};
use crate::prefix::PrefixTokens;

use super::query::{Heads, Method, Query, Token};

/// What names a model's tokens in words: its prefix tokens, what its classifier reads, how
/// many patches and layers it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelTokens {
    pub prefix: PrefixTokens,
    pub pooling: Pooling,
    pub patches: usize,
    pub layers: usize,
}

impl ModelTokens {
    /// The tokens of a model of `config`.
    pub fn of(config: &VitConfig) -> Self {
        Self {
            prefix: config.prefix_tokens(),
            pooling: config.pooling,
            patches: config.num_patches(),
            layers: config.depth,
        }
    }

    /// `token` in words: "the class token", "register 2", "patch 5", "the output (the class
    /// token)", "the mean of the patch tokens".
    pub fn name(&self, token: Token) -> String {
        match token {
            Token::Output => match self.pooling {
                Pooling::Token if self.prefix.distillation => {
                    "the output (the mean of the class and distillation tokens)".into()
                }
                Pooling::Token => "the output (the class token)".into(),
                Pooling::Mean => "the output (the mean of the patch tokens)".into(),
            },
            Token::Patches => "the mean of the patch tokens".into(),
            named => named
                .index(self.prefix, self.patches)
                .map_or_else(|| format!("token {named}"), |i| self.prefix.describe(i)),
        }
    }
}

impl Query {
    /// The question in words: "Attention at layer 3, head 2: which tokens attend to patch 5",
    /// "Rollout through layers 1 to 12, the mean of the heads: where the class token attends",
    /// "Relevance for cat (87.5%) through layers 1 to 12: what the output (the class token)
    /// draws on". `class` names the class relevance is for, in the caller's words (a label,
    /// with its probability where known); no layer means the last. Rollout and relevance from
    /// the patches' mean in a model without a class token say so.
    pub fn caption(&self, model: &ModelTokens, class: Option<&str>) -> String {
        let token = model.name(self.token);
        let layer = self.layer.unwrap_or(model.layers);
        let heads = match self.heads {
            Heads::One(h) => format!("head {h}"),
            fused => format!("the {fused} of the heads"),
        };
        let way = if self.reverse {
            format!("which tokens attend to {token}")
        } else {
            format!("where {token} attends")
        };
        let from_patches = !model.prefix.class
            && (self.token == Token::Patches
                || (self.token == Token::Output && model.pooling == Pooling::Mean));
        let start = if from_patches && self.method != Method::Attention {
            " (the model has no class token: this starts from the patches' mean)"
        } else {
            ""
        };
        match self.method {
            Method::Attention => format!("Attention at layer {layer}, {heads}: {way}"),
            Method::Rollout => {
                format!("Rollout through layers 1 to {layer}, {heads}: {way}{start}")
            }
            Method::Relevance => {
                let class = class.map_or(String::new(), |c| format!(" for {c}"));
                let way = if self.reverse {
                    format!("what {token} feeds")
                } else {
                    format!("what {token} draws on")
                };
                format!("Relevance{class} through layers 1 to {layer}: {way}{start}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIT: ModelTokens = ModelTokens {
        prefix: PrefixTokens::CLASS,
        pooling: Pooling::Token,
        patches: 16,
        layers: 6,
    };

    fn attention() -> Query {
        Query {
            layer: Some(3),
            heads: Heads::One(2),
            token: Token::Index(5),
            reverse: true,
            ..Query::default()
        }
    }

    #[test]
    fn the_question_in_words() {
        assert_eq!(
            attention().caption(&VIT, None),
            "Attention at layer 3, head 2: which tokens attend to patch 5"
        );
        // Registers are named, and token numbers count them.
        let dino = ModelTokens {
            prefix: PrefixTokens {
                registers: 4,
                embedded: false,
                ..PrefixTokens::CLASS
            },
            ..VIT
        };
        let reg = Query {
            token: Token::Register(2),
            reverse: false,
            ..attention()
        };
        assert_eq!(
            reg.caption(&dino, None),
            "Attention at layer 3, head 2: where register 2 attends"
        );
        // No class token: rollout from the patches' mean, and the caption says so.
        let gap = ModelTokens {
            prefix: PrefixTokens {
                class: false,
                ..PrefixTokens::CLASS
            },
            pooling: Pooling::Mean,
            ..VIT
        };
        let rollout = Query {
            method: Method::Rollout,
            token: Token::start(gap.prefix),
            heads: Heads::default(),
            reverse: false,
            ..attention()
        };
        assert_eq!(
            rollout.caption(&gap, None),
            "Rollout through layers 1 to 3, the mean of the heads: where the mean of the patch \
             tokens attends (the model has no class token: this starts from the patches' mean)"
        );
    }

    #[test]
    fn relevance_names_its_class_and_no_layer_means_the_last() {
        let relevance = Query {
            method: Method::Relevance,
            layer: None,
            token: Token::Output,
            ..Query::default()
        };
        assert_eq!(
            relevance.caption(&VIT, Some("cat (87.5%)")),
            "Relevance for cat (87.5%) through layers 1 to 6: what the output (the class token) \
             draws on"
        );
        let deit = ModelTokens {
            prefix: PrefixTokens {
                distillation: true,
                ..PrefixTokens::CLASS
            },
            ..VIT
        };
        let reverse = Query {
            reverse: true,
            ..relevance
        };
        assert_eq!(
            reverse.caption(&deit, None),
            "Relevance through layers 1 to 6: what the output (the mean of the class and \
             distillation tokens) feeds"
        );
    }
}
