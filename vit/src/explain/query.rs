//! The question: which map ([`Method`]), which layer, which heads ([`Heads`]), whose row or
//! column ([`Token`]), which way; parsed from and printed as the CLI and the page spell them.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::prefix::{PrefixKind, PrefixTokens};
use crate::rollout::HeadFusion;

/// Which map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// One layer's attention probabilities.
    #[default]
    Attention,
    /// Attention rollout through the layers.
    Rollout,
    /// Class-specific relevance (Chefer et al. 2021).
    Relevance,
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "attention" => Ok(Self::Attention),
            "rollout" => Ok(Self::Rollout),
            "relevance" => Ok(Self::Relevance),
            _ => Err(format!(
                "unknown method '{s}' (attention, rollout or relevance)"
            )),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Attention => "attention",
            Self::Rollout => "rollout",
            Self::Relevance => "relevance",
        })
    }
}

/// One head (numbered from 1), or every head fused into one matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heads {
    One(usize),
    Fused(HeadFusion),
}

impl Default for Heads {
    fn default() -> Self {
        Self::Fused(HeadFusion::Mean)
    }
}

impl FromStr for Heads {
    type Err = String;
    /// `mean`, `max`, `min`, or a head's number from 1.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(fusion) = s.parse::<HeadFusion>() {
            return Ok(Self::Fused(fusion));
        }
        match s.parse::<usize>() {
            Ok(h) if h >= 1 => Ok(Self::One(h)),
            _ => Err(format!(
                "unknown head '{s}': a head's number from 1, or mean, max or min"
            )),
        }
    }
}

impl fmt::Display for Heads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::One(h) => write!(f, "{h}"),
            Self::Fused(HeadFusion::Mean) => f.write_str("mean"),
            Self::Fused(HeadFusion::Max) => f.write_str("max"),
            Self::Fused(HeadFusion::Min) => f.write_str("min"),
        }
    }
}

impl Serialize for Heads {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::One(h) => s.serialize_u64(*h as u64),
            fused => s.serialize_str(&fused.to_string()),
        }
    }
}

/// Whose row (or column) a map shows. The tokens are the model's prefix tokens
/// ([`crate::prefix`]: class, distillation, registers) then the patches row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// Token `i` of the sequence, from 0.
    Index(usize),
    /// The class token.
    Class,
    /// A distilled model's distillation token.
    Distillation,
    /// Register `r`, from 1.
    Register(usize),
    /// Patch `k`, from 1, row by row.
    Patch(usize),
    /// The mean of the patch tokens' rows (or columns).
    Patches,
    /// What the classifier reads: for class-token pooling the class token (a distilled model's
    /// two heads read the class and distillation tokens: their mean), for mean pooling the
    /// patch tokens' mean.
    Output,
}

impl Token {
    /// Where rollout and relevance start unless asked otherwise: the class token, or the mean
    /// of the patches where the model has none.
    pub fn start(prefix: PrefixTokens) -> Self {
        if prefix.class {
            Self::Class
        } else {
            Self::Patches
        }
    }

    /// The token a question is about when none is named (`trainer explain` without `--token`):
    /// what the classifier reads for relevance, else where rollout starts ([`Token::start`]).
    pub fn default_for(method: Method, prefix: PrefixTokens) -> Self {
        match method {
            Method::Relevance => Self::Output,
            Method::Attention | Method::Rollout => Self::start(prefix),
        }
    }

    /// The one token this names in a model with `prefix` in front of `patches` patches, or
    /// `None` for a mean of tokens ([`Token::Patches`], [`Token::Output`]) or a token the
    /// model does not have.
    pub fn index(self, prefix: PrefixTokens, patches: usize) -> Option<usize> {
        match self {
            Self::Index(i) => (i < prefix.count() + patches).then_some(i),
            Self::Class => prefix.index(PrefixKind::Class, 1),
            Self::Distillation => prefix.index(PrefixKind::Distillation, 1),
            Self::Register(r) => prefix.index(PrefixKind::Register, r),
            Self::Patch(k) => (k >= 1 && k <= patches).then(|| prefix.token_of_patch(k - 1)),
            Self::Patches | Self::Output => None,
        }
    }
}

impl FromStr for Token {
    type Err = String;
    /// `cls`, `dist`, `regR`, `patchK`, `patches`, `output`, or a token's number.
    fn from_str(s: &str) -> Result<Self, String> {
        let numbered = |prefix: &str| {
            s.strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n >= 1)
        };
        match s {
            "cls" => return Ok(Self::Class),
            "dist" => return Ok(Self::Distillation),
            "patches" => return Ok(Self::Patches),
            "output" => return Ok(Self::Output),
            _ => {}
        }
        if let Some(r) = numbered("reg") {
            return Ok(Self::Register(r));
        }
        if let Some(k) = numbered("patch") {
            return Ok(Self::Patch(k));
        }
        s.parse::<usize>().map(Self::Index).map_err(|_| {
            format!(
                "unknown token '{s}': cls, dist, reg1.., patch1.., patches (their mean), output \
                 (what the classifier reads), or a token's number from 0 (prefix tokens first)"
            )
        })
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index(i) => write!(f, "{i}"),
            Self::Class => f.write_str("cls"),
            Self::Distillation => f.write_str("dist"),
            Self::Register(r) => write!(f, "reg{r}"),
            Self::Patch(k) => write!(f, "patch{k}"),
            Self::Patches => f.write_str("patches"),
            Self::Output => f.write_str("output"),
        }
    }
}

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Index(i) => s.serialize_u64(*i as u64),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

/// One question to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Query {
    pub method: Method,
    /// Attention: the layer shown. Rollout and relevance: through layers `1..=layer`.
    /// `None`: the last layer (all of them).
    pub layer: Option<usize>,
    /// Attention and rollout; relevance always averages the heads (Chefer et al.'s rule).
    pub heads: Heads,
    pub token: Token,
    /// The column instead of the row: which tokens attend to (draw from) `token`.
    pub reverse: bool,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            method: Method::Attention,
            layer: None,
            heads: Heads::default(),
            token: Token::Class,
            reverse: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        assert_eq!("max".parse::<Heads>(), Ok(Heads::Fused(HeadFusion::Max)));
        assert_eq!("2".parse::<Heads>(), Ok(Heads::One(2)));
        assert!("0".parse::<Heads>().is_err());
        assert!(
            "x".parse::<Heads>()
                .unwrap_err()
                .contains("mean, max or min")
        );
        for (text, token) in [
            ("cls", Token::Class),
            ("dist", Token::Distillation),
            ("reg3", Token::Register(3)),
            ("patch12", Token::Patch(12)),
            ("patches", Token::Patches),
            ("output", Token::Output),
            ("17", Token::Index(17)),
        ] {
            assert_eq!(text.parse::<Token>(), Ok(token));
            assert_eq!(token.to_string(), text, "printed as parsed");
        }
        for bad in ["-1", "reg0", "patch", "register2"] {
            assert!(bad.parse::<Token>().is_err(), "{bad}");
        }
        assert_eq!("relevance".parse::<Method>(), Ok(Method::Relevance));
        assert!("gradcam".parse::<Method>().is_err());
        let json = serde_json::to_string(&Query::default()).unwrap();
        assert_eq!(
            json,
            r#"{"method":"attention","layer":null,"heads":"mean","token":"cls","reverse":false}"#
        );
        let q = Query {
            token: Token::Index(4),
            ..Query::default()
        };
        assert!(serde_json::to_string(&q).unwrap().contains(r#""token":4"#));
    }

    #[test]
    fn tokens_name_their_place_in_the_sequence() {
        let dino = PrefixTokens {
            registers: 4,
            embedded: false,
            ..PrefixTokens::CLASS
        };
        let patches = 9;
        assert_eq!(Token::Class.index(dino, patches), Some(0));
        assert_eq!(Token::Register(4).index(dino, patches), Some(4));
        assert_eq!(Token::Register(5).index(dino, patches), None);
        assert_eq!(Token::Distillation.index(dino, patches), None);
        assert_eq!(Token::Patch(1).index(dino, patches), Some(5));
        assert_eq!(Token::Patch(10).index(dino, patches), None);
        assert_eq!(Token::Index(13).index(dino, patches), Some(13));
        assert_eq!(Token::Index(14).index(dino, patches), None);
        assert_eq!(Token::start(dino), Token::Class);
        let gap = PrefixTokens {
            class: false,
            ..PrefixTokens::CLASS
        };
        assert_eq!(Token::start(gap), Token::Patches);
        assert_eq!(Token::Patch(1).index(gap, patches), Some(0));
    }
}
