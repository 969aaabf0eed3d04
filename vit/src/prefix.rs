//! The tokens in front of the patches, timm's `num_prefix_tokens` as one value: which there
//! are, in which order, and whether `pos_embed` has a row for them. Every part of Vitrine that
//! walks the token sequence asks [`PrefixTokens`] (from [`crate::VitConfig::prefix_tokens`] or
//! [`crate::VisionTransformer::prefix`]): the embedding and pooling, the position embeddings'
//! resampling, rollout and explain, patch geometry, fine-tuning, teaching, the CLI and the page.
//!
//! The order is timm's: the class token, then the distillation token (a distilled DeiT, Touvron
//! et al. 2021), then the registers (Darcet et al., "Vision Transformers Need Registers", 2024),
//! then the patches row by row.

use serde::Serialize;

/// What one prefix token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefixKind {
    /// The class token, which class-token pooling reads.
    Class,
    /// A distilled DeiT's second token, which its second head (`head_dist`) reads.
    Distillation,
    /// A register: a token with no input of its own, where a model can keep what it computes.
    Register,
}

impl PrefixKind {
    /// Every kind, in token order.
    pub const ALL: [Self; 3] = [Self::Class, Self::Distillation, Self::Register];

    /// The parameter (timm's name) that holds the tokens of this kind: `[1, n, D]`.
    pub fn param(self) -> &'static str {
        match self {
            Self::Class => "cls_token",
            Self::Distillation => "dist_token",
            Self::Register => "reg_token",
        }
    }
}

/// A model's prefix tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PrefixTokens {
    pub class: bool,
    pub distillation: bool,
    pub registers: usize,
    /// Whether `pos_embed` has a row for each prefix token before the patches' rows (timm's
    /// `not no_embed_class`); when not, the positions are added to the patches alone.
    pub embedded: bool,
}

impl Default for PrefixTokens {
    fn default() -> Self {
        Self::CLASS
    }
}

impl PrefixTokens {
    /// The original ViT's: one class token, with a position of its own.
    pub const CLASS: Self = Self {
        class: true,
        distillation: false,
        registers: 0,
        embedded: true,
    };

    /// How many tokens come before the patches (timm's `num_prefix_tokens`).
    pub fn count(self) -> usize {
        // Saturating: a manifest may say anything, and validation refuses what overflows.
        self.registers
            .saturating_add(self.class as usize + self.distillation as usize)
    }

    /// How many of `kind` there are.
    pub fn of(self, kind: PrefixKind) -> usize {
        match kind {
            PrefixKind::Class => self.class as usize,
            PrefixKind::Distillation => self.distillation as usize,
            PrefixKind::Register => self.registers,
        }
    }

    /// Rows of `pos_embed` before the patches' (timm's `0 if no_embed_class else
    /// num_prefix_tokens`): what [`crate::pos_embed`] keeps when it resamples the grid.
    pub fn with_positions(self) -> usize {
        if self.embedded { self.count() } else { 0 }
    }

    /// The kind of every prefix token, in token order.
    pub fn kinds(self) -> Vec<PrefixKind> {
        PrefixKind::ALL
            .iter()
            .flat_map(|&k| std::iter::repeat_n(k, self.of(k)))
            .collect()
    }

    /// Token `token`'s kind, and which of its kind it is (from 1); `None` for a patch.
    pub fn kind(self, token: usize) -> Option<(PrefixKind, usize)> {
        let mut first = 0usize;
        for kind in PrefixKind::ALL {
            let n = self.of(kind);
            if token < first.saturating_add(n) {
                return Some((kind, token - first + 1));
            }
            first = first.saturating_add(n);
        }
        None
    }

    /// The token of the `nth` (from 1) token of `kind`, if the model has it.
    pub fn index(self, kind: PrefixKind, nth: usize) -> Option<usize> {
        let before = PrefixKind::ALL
            .iter()
            .take_while(|&&k| k != kind)
            .fold(0usize, |sum, &k| sum.saturating_add(self.of(k)));
        (nth >= 1 && nth <= self.of(kind)).then(|| before.saturating_add(nth - 1))
    }

    /// The patch (from 0, row-major) at token `token`; `None` for a prefix token.
    pub fn patch(self, token: usize) -> Option<usize> {
        token.checked_sub(self.count())
    }

    /// The token of patch `patch` (from 0).
    pub fn token_of_patch(self, patch: usize) -> usize {
        self.count().saturating_add(patch)
    }

    /// The side of the square patch grid behind a sequence of `tokens`, or `None` when there
    /// are fewer tokens than prefix tokens or the patches do not form a square.
    pub fn grid_side(self, tokens: usize) -> Option<usize> {
        square_side(tokens.checked_sub(self.count())?)
    }

    /// Token `token` in words: "the class token", "the distillation token", "register 2",
    /// "patch 7" (patches from 1, as the CLI and the page number them).
    pub fn describe(self, token: usize) -> String {
        match self.kind(token) {
            Some((PrefixKind::Class, _)) => "the class token".into(),
            Some((PrefixKind::Distillation, _)) => "the distillation token".into(),
            Some((PrefixKind::Register, r)) => format!("register {r}"),
            None => format!("patch {}", token - self.count() + 1),
        }
    }

    /// Token `token`'s short name: `cls`, `dist`, `reg2`, `patch7`; what the CLI's
    /// `--token` accepts.
    pub fn short_name(self, token: usize) -> String {
        match self.kind(token) {
            Some((PrefixKind::Class, _)) => "cls".into(),
            Some((PrefixKind::Distillation, _)) => "dist".into(),
            Some((PrefixKind::Register, r)) => format!("reg{r}"),
            None => format!("patch{}", token - self.count() + 1),
        }
    }

    /// The prefix tokens in words, for messages: "a class token and 4 registers".
    pub fn summary(self) -> String {
        let mut parts = Vec::new();
        if self.class {
            parts.push("a class token".to_string());
        }
        if self.distillation {
            parts.push("a distillation token".into());
        }
        match self.registers {
            0 => {}
            1 => parts.push("1 register".into()),
            n => parts.push(format!("{n} registers")),
        }
        match parts.len() {
            0 => "no prefix tokens".into(),
            1 => parts.remove(0),
            _ => {
                let last = parts.pop().unwrap_or_default();
                format!("{} and {last}", parts.join(", "))
            }
        }
    }
}

/// `n`'s integer square root when `n` is a square.
pub(crate) fn square_side(n: usize) -> Option<usize> {
    let side = (n as f64).sqrt().round() as usize;
    (side * side == n).then_some(side)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DINO: PrefixTokens = PrefixTokens {
        class: true,
        distillation: false,
        registers: 4,
        embedded: false,
    };

    #[test]
    fn tokens_are_in_timms_order() {
        let distilled = PrefixTokens {
            distillation: true,
            ..PrefixTokens::CLASS
        };
        assert_eq!(distilled.count(), 2);
        assert_eq!(
            distilled.kinds(),
            [PrefixKind::Class, PrefixKind::Distillation]
        );
        assert_eq!(DINO.count(), 5);
        assert_eq!(DINO.kind(0), Some((PrefixKind::Class, 1)));
        assert_eq!(DINO.kind(3), Some((PrefixKind::Register, 3)));
        assert_eq!(DINO.kind(5), None);
        assert_eq!(DINO.index(PrefixKind::Register, 4), Some(4));
        assert_eq!(DINO.index(PrefixKind::Register, 5), None);
        assert_eq!(DINO.index(PrefixKind::Distillation, 1), None);
        assert_eq!((DINO.patch(4), DINO.patch(5)), (None, Some(0)));
        assert_eq!(DINO.token_of_patch(2), 7);
        assert_eq!(DINO.with_positions(), 0, "no_embed_class");
        assert_eq!(PrefixTokens::CLASS.with_positions(), 1);
        let gap = PrefixTokens {
            class: false,
            ..PrefixTokens::CLASS
        };
        assert_eq!((gap.count(), gap.patch(0)), (0, Some(0)));
        assert_eq!(gap.summary(), "no prefix tokens");
        assert_eq!(DINO.summary(), "a class token and 4 registers");
    }

    #[test]
    fn tokens_have_names() {
        assert_eq!(DINO.describe(0), "the class token");
        assert_eq!(DINO.describe(2), "register 2");
        assert_eq!(DINO.describe(5), "patch 1");
        assert_eq!(DINO.short_name(4), "reg4");
        assert_eq!(DINO.short_name(9), "patch5");
    }

    #[test]
    fn the_grid_is_what_follows_the_prefix() {
        assert_eq!(DINO.grid_side(5 + 16), Some(4));
        assert_eq!(DINO.grid_side(1 + 16), None);
        assert_eq!(DINO.grid_side(3), None);
        assert_eq!(PrefixTokens::CLASS.grid_side(65), Some(8));
    }
}
