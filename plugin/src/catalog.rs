//! The model catalog: every Kimi model the seed lists plus those served
//! today, with prices, capabilities and lifecycle (MOONSHOT-API.md §1).
//!
//! Prices are integers in microcents (ucents) per token. Puter writes prices
//! as "cents per 1M tokens", which is the same number: $0.95 per 1M tokens =
//! 95 cents per 1M = 95 ucents per token.

use crate::date::Date;

/// An input modality a model accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modality {
    Text,
    Image,
    Video,
}

impl Modality {
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Text => "text",
            Modality::Image => "image",
            Modality::Video => "video",
        }
    }
}

/// How a model takes its reasoning switch (MOONSHOT-API.md §3 `thinking`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thinking {
    /// No reasoning at all.
    None,
    /// Reasons always; takes no parameter (kimi-k2-thinking).
    Implicit,
    /// `thinking: {type}`; no `keep` (kimi-k2.5).
    Toggle,
    /// `thinking: {type, keep: null | "all"}` (kimi-k2.6).
    ToggleKeep,
    /// Always on: only `{type: "enabled"}` is accepted (kimi-k2.7-code).
    AlwaysOn,
    /// Always reasons; top-level `reasoning_effort` low | high | max (kimi-k3).
    Effort,
}

impl Thinking {
    /// Whether the model reasons when the request says nothing.
    pub fn on_by_default(self) -> bool {
        !matches!(self, Thinking::None)
    }
}

/// Which sampling parameters the model pins (any other value is a 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// temperature in [0, 1], n up to 5.
    Free,
    /// kimi-k2.5 / k2.6: temperature 1.0 with thinking, 0.6 without; top_p 0.95; n 1.
    PinnedByThinking,
    /// kimi-k2.7 / k3: temperature 1.0, n 1.
    PinnedOne,
}

/// What a model does with an optional request field the plugin forwards
/// (MOONSHOT-API.md §3, §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldSupport {
    /// Sent on as given; Moonshot decides.
    Forwarded,
    /// The model answers 400 to it (recorded): refused before sending, with
    /// Moonshot's own reason.
    Refused(&'static str),
}

/// The optional request fields whose support differs between models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestFields {
    /// `logprobs: true` and `top_logprobs` (`logprobs: false` always passes).
    pub logprobs: FieldSupport,
    /// `prediction: {type: "content", content}`.
    pub prediction: FieldSupport,
    /// `logit_bias: {token id: bias}`.
    pub logit_bias: FieldSupport,
}

/// Every field forwarded: what the plugin does where nothing was recorded.
const FIELDS_FORWARDED: RequestFields = RequestFields {
    logprobs: FieldSupport::Forwarded,
    prediction: FieldSupport::Forwarded,
    logit_bias: FieldSupport::Forwarded,
};

/// kimi-k3, as recorded on 2026-09-02 (tests/recordings/kimi-probes):
/// `prediction` accepted, `logprobs: true` and `logit_bias` answered 400.
const K3_FIELDS: RequestFields = RequestFields {
    logprobs: FieldSupport::Refused("invalid logprobs: only false is allowed for this model"),
    prediction: FieldSupport::Forwarded,
    logit_bias: FieldSupport::Refused("logit_bias is not supported yet"),
};

/// Prices in microcents per token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    /// Cache-hit input; `None` where the model has no cache price (moonshot-v1),
    /// so cached tokens are billed as input.
    pub cached: Option<u64>,
    pub output: u64,
}

/// One model of the catalog.
#[derive(Debug, PartialEq, Eq)]
pub struct ModelCard {
    pub id: &'static str,
    pub name: &'static str,
    /// Extra names the model answers to, besides `moonshot/<id>`.
    pub aliases: &'static [&'static str],
    pub context: u64,
    pub max_output: u64,
    /// `max_completion_tokens` sent when the caller gives none: large enough
    /// that a reasoning model still has room to answer after thinking.
    pub default_max_tokens: u64,
    pub input: &'static [Modality],
    pub price: Price,
    pub thinking: Thinking,
    pub sampling: Sampling,
    pub tool_call: bool,
    pub json_mode: bool,
    pub partial_mode: bool,
    pub knowledge: &'static str,
    /// First day served, where known.
    pub released: Option<Date>,
    /// First day no longer served.
    pub retired_on: Option<Date>,
    /// Where a retired id migrates.
    pub successor: Option<&'static str>,
    /// Where a retired id migrates when the request carries image or video
    /// and `successor` cannot read it.
    pub media_successor: Option<&'static str>,
    /// moonshot-v1-auto: (largest prompt + max_tokens, tier) pairs it routes to.
    pub auto_tiers: &'static [(u64, &'static str)],
    /// Optional request fields whose support differs per model.
    pub fields: RequestFields,
    /// Takes tools declared in a system message (`{"role":"system","tools":[..]}`,
    /// no content needed): kimi-k3's documented dynamic tools.
    pub system_tools: bool,
}

/// Why a model is not served on a given day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Served,
    NotYetReleased(Date),
    Retired(Date),
}

impl ModelCard {
    pub fn lifecycle(&self, today: Date) -> Lifecycle {
        match (self.released, self.retired_on) {
            (Some(from), _) if today < from => Lifecycle::NotYetReleased(from),
            (_, Some(until)) if today >= until => Lifecycle::Retired(until),
            _ => Lifecycle::Served,
        }
    }

    pub fn accepts(&self, modality: Modality) -> bool {
        self.input.contains(&modality)
    }

    pub fn puter_id(&self) -> String {
        format!("moonshot:moonshot/{}", self.id)
    }

    /// Every name that resolves to this card: the id, its aliases and
    /// `moonshot/<id>`.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.id.to_string())
            .chain(self.aliases.iter().map(|a| a.to_string()))
            .chain(std::iter::once(format!("moonshot/{}", self.id)))
    }
}

const TEXT: &[Modality] = &[Modality::Text];
const TEXT_IMAGE: &[Modality] = &[Modality::Text, Modality::Image];
const TEXT_IMAGE_VIDEO: &[Modality] = &[Modality::Text, Modality::Image, Modality::Video];

const K2_RETIRED: Option<Date> = Some(Date::new(2026, 5, 25));
const V1_RETIRED: Option<Date> = Some(Date::new(2026, 8, 31));

/// A card with the defaults shared by most rows; each entry overrides what differs.
const BASE: ModelCard = ModelCard {
    id: "",
    name: "",
    aliases: &[],
    context: 262_144,
    max_output: 262_144,
    default_max_tokens: 32_768,
    input: TEXT,
    price: Price {
        input: 0,
        cached: None,
        output: 0,
    },
    thinking: Thinking::None,
    sampling: Sampling::Free,
    tool_call: true,
    json_mode: true,
    partial_mode: true,
    knowledge: "2025-01",
    released: None,
    retired_on: None,
    successor: None,
    media_successor: None,
    auto_tiers: &[],
    fields: FIELDS_FORWARDED,
    system_tools: false,
};

const fn price(input: u64, cached: u64, output: u64) -> Price {
    Price {
        input,
        cached: Some(cached),
        output,
    }
}

const fn v1_price(input: u64, output: u64) -> Price {
    Price {
        input,
        cached: None,
        output,
    }
}

/// What every Moonshot V1 row shares. Prices: the seed's rows, which match
/// Moonshot's published tables (MOONSHOT-API.md §1); retired 2026-08-31, so
/// not re-checked against today's pages.
const V1: ModelCard = ModelCard {
    default_max_tokens: 1_024,
    json_mode: false,
    partial_mode: false,
    knowledge: "2024-01",
    retired_on: V1_RETIRED,
    successor: Some("kimi-k2.6"),
    ..BASE
};

/// What every retired Kimi K2 row shares. Prices: the seed's rows (Moonshot's
/// published tables per MOONSHOT-API.md §1); retired 2026-05-25.
const K2: ModelCard = ModelCard {
    partial_mode: false,
    retired_on: K2_RETIRED,
    successor: Some("kimi-k2.6"),
    ..BASE
};

/// The whole catalog, newest first (the order `models()` lists them in).
pub static MODELS: &[ModelCard] = &[
    // kimi-k3. Price $3.00 / $0.30 cache hit / $15.00 per 1M: Moonshot's
    // pricing page platform.kimi.ai/docs/pricing/chat-k3 (as cited by
    // getagentseal/codeburn#709, 2026-07), matched by docs.apiyi.com/models/kimi-k3
    // and the aicost crate's table. Context 1,048,576 and text+image+video in:
    // docs.apiyi.com (2026-07-18) and MOONSHOT-API.md §1. Launched 2026-07-16
    // (issue 13; resellers list it from 2026-07-18). Accepts `prediction`,
    // refuses `logprobs: true` and `logit_bias`: recordings in
    // tests/recordings/kimi-probes (2026-09-01/02).
    ModelCard {
        id: "kimi-k3",
        name: "Kimi K3",
        context: 1_048_576,
        max_output: 1_048_576,
        input: TEXT_IMAGE_VIDEO,
        price: price(300, 30, 1_500),
        thinking: Thinking::Effort,
        sampling: Sampling::PinnedOne,
        knowledge: "2026-01",
        released: Some(Date::new(2026, 7, 16)),
        fields: K3_FIELDS,
        system_tools: true,
        ..BASE
    },
    // kimi-k2.7-code and -highspeed: $0.95 / $4.00 and $1.90 / $8.00 per 1M
    // (MOONSHOT-API.md §1, the aicost crate's table); the cache-hit prices
    // $0.19 and $0.38 come from secondary tables only (NOT confirmed on a
    // Moonshot page). Served from 2026-06-12 (MOONSHOT-API.md §1).
    ModelCard {
        id: "kimi-k2.7-code",
        name: "Kimi K2.7 Code",
        input: TEXT_IMAGE,
        price: price(95, 19, 400),
        thinking: Thinking::AlwaysOn,
        sampling: Sampling::PinnedOne,
        released: Some(Date::new(2026, 6, 12)),
        ..BASE
    },
    ModelCard {
        id: "kimi-k2.7-code-highspeed",
        name: "Kimi K2.7 Code Highspeed",
        input: TEXT_IMAGE,
        price: price(190, 38, 800),
        thinking: Thinking::AlwaysOn,
        sampling: Sampling::PinnedOne,
        released: Some(Date::new(2026, 6, 12)),
        ..BASE
    },
    // kimi-k2.6. Text, image and video in: Moonshot's own pricing page
    // platform.kimi.com/docs/pricing/chat-k26 ("支持文本、图片与视频输入"),
    // its Hugging Face model card moonshotai/Kimi-K2.6 (native multimodal,
    // MoonViT encoder, image-text-to-text) and its chat API reference, which
    // sends `image_url` content to kimi-k2.6 (MOONSHOT-API.md §10); Vercel's
    // AI Gateway lists Vision (Image) and Video Input. Price $0.95 / $0.16 /
    // $4.00 per 1M and context 262,144: vercel.com/ai-gateway/models/kimi-k2.6
    // (Moonshot AI as provider) and docs.openclaw.ai ("Moonshot's published
    // pay-as-you-go rates"). Released 2026-04-21 (Moonshot's announcement,
    // apidog.com/blog/kimi-k2-6-api dated 21 April 2026).
    ModelCard {
        id: "kimi-k2.6",
        name: "Kimi K2.6",
        aliases: &["kimi-k26", "kimi"],
        input: TEXT_IMAGE_VIDEO,
        released: Some(Date::new(2026, 4, 21)),
        price: price(95, 16, 400),
        thinking: Thinking::ToggleKeep,
        sampling: Sampling::PinnedByThinking,
        ..BASE
    },
    // kimi-k2.5: $0.60 / $0.10 / $3.00 per 1M (the seed; docs.openclaw.ai
    // quotes the same published rates); retired 2026-08-31 (MOONSHOT-API.md §1).
    ModelCard {
        id: "kimi-k2.5",
        name: "Kimi K2.5",
        aliases: &["kimi-k25"],
        input: TEXT_IMAGE_VIDEO,
        price: price(60, 10, 300),
        thinking: Thinking::Toggle,
        sampling: Sampling::PinnedByThinking,
        partial_mode: false,
        retired_on: V1_RETIRED,
        // kimi-k2.6 reads images and video too, and costs less than kimi-k3.
        successor: Some("kimi-k2.6"),
        ..BASE
    },
    ModelCard {
        id: "kimi-k2-0905-preview",
        name: "Kimi K2 0905 Preview",
        default_max_tokens: 8_192,
        price: price(60, 15, 250),
        ..K2
    },
    ModelCard {
        id: "kimi-k2-0711-preview",
        name: "Kimi K2 0711 Preview",
        context: 131_072,
        max_output: 131_072,
        default_max_tokens: 8_192,
        price: price(60, 15, 250),
        ..K2
    },
    ModelCard {
        id: "kimi-k2-turbo-preview",
        name: "Kimi K2 Turbo Preview",
        default_max_tokens: 8_192,
        price: price(115, 15, 800),
        ..K2
    },
    ModelCard {
        id: "kimi-k2-thinking",
        name: "Kimi K2 Thinking",
        price: price(60, 15, 250),
        thinking: Thinking::Implicit,
        ..K2
    },
    ModelCard {
        id: "kimi-k2-thinking-turbo",
        name: "Kimi K2 Thinking Turbo",
        price: price(115, 15, 800),
        thinking: Thinking::Implicit,
        ..K2
    },
    ModelCard {
        id: "moonshot-v1-8k",
        name: "Moonshot V1 8K",
        context: 8_192,
        max_output: 8_192,
        price: v1_price(20, 200),
        ..V1
    },
    ModelCard {
        id: "moonshot-v1-32k",
        name: "Moonshot V1 32K",
        context: 32_768,
        max_output: 32_768,
        price: v1_price(100, 300),
        ..V1
    },
    ModelCard {
        id: "moonshot-v1-128k",
        name: "Moonshot V1 128K",
        context: 131_072,
        max_output: 131_072,
        price: v1_price(200, 500),
        ..V1
    },
    ModelCard {
        id: "moonshot-v1-auto",
        name: "Moonshot V1 Auto",
        context: 131_072,
        max_output: 131_072,
        // Listed at the largest tier's price (what a host should reserve);
        // billed at the tier the response names.
        price: v1_price(200, 500),
        auto_tiers: &[
            (8_192, "moonshot-v1-8k"),
            (32_768, "moonshot-v1-32k"),
            (u64::MAX, "moonshot-v1-128k"),
        ],
        ..V1
    },
    ModelCard {
        id: "moonshot-v1-8k-vision-preview",
        name: "Moonshot V1 8K Vision Preview",
        context: 8_192,
        max_output: 8_192,
        input: TEXT_IMAGE,
        price: v1_price(20, 200),
        ..V1
    },
    ModelCard {
        id: "moonshot-v1-32k-vision-preview",
        name: "Moonshot V1 32K Vision Preview",
        context: 32_768,
        max_output: 32_768,
        input: TEXT_IMAGE,
        price: v1_price(100, 300),
        ..V1
    },
    ModelCard {
        id: "moonshot-v1-128k-vision-preview",
        name: "Moonshot V1 128K Vision Preview",
        context: 131_072,
        max_output: 131_072,
        input: TEXT_IMAGE,
        price: v1_price(200, 500),
        ..V1
    },
];

/// The seed's flagship, returned by `getDefaultModel()`.
pub const DEFAULT_MODEL: &str = "kimi-k2.6";

/// Finds a card by id, alias, `moonshot/<id>` or puterId, ignoring case and
/// surrounding white space (as Puter's model map is lower-cased).
pub fn lookup(name: &str) -> Option<&'static ModelCard> {
    let wanted = name.trim().to_ascii_lowercase();
    let wanted = wanted.strip_prefix("moonshot:").unwrap_or(&wanted);
    MODELS.iter().find(|card| card.names().any(|n| n == wanted))
}

/// Finds a card by its exact id (catalog-internal references).
pub fn by_id(id: &str) -> Option<&'static ModelCard> {
    MODELS.iter().find(|card| card.id == id)
}

/// What to do with a request for a retired model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetiredPolicy {
    /// Serve it with the successor, and say so in the result.
    Migrate,
    /// Refuse with a clear error.
    Error,
}

/// The model that will serve a request, and why it differs from the one asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub card: &'static ModelCard,
    /// The id the caller asked for when it was migrated.
    pub migrated_from: Option<&'static str>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    Unknown(String),
    NotYetReleased {
        id: &'static str,
        from: Date,
    },
    Retired {
        id: &'static str,
        on: Date,
        successor: Option<&'static str>,
    },
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Unknown(name) => write!(
                f,
                "unknown model '{name}': not a Moonshot model id, alias or puterId"
            ),
            ResolveError::NotYetReleased { id, from } => {
                write!(f, "model '{id}' is served from {from}, not yet")
            }
            ResolveError::Retired { id, on, successor } => {
                write!(f, "model '{id}' was retired on {on}")?;
                if let Some(next) = successor {
                    write!(f, "; use '{next}' instead")?;
                }
                Ok(())
            }
        }
    }
}

/// Resolves the model a request names on `today`. `needs_media` says whether
/// the request carries image or video, which picks the media successor.
pub fn resolve(
    name: Option<&str>,
    today: Date,
    policy: RetiredPolicy,
    needs_media: bool,
) -> Result<Resolution, ResolveError> {
    let asked = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_MODEL);
    let card = lookup(asked).ok_or_else(|| ResolveError::Unknown(asked.to_string()))?;
    match card.lifecycle(today) {
        Lifecycle::Served => Ok(Resolution {
            card,
            migrated_from: None,
            reason: None,
        }),
        Lifecycle::NotYetReleased(from) => Err(ResolveError::NotYetReleased { id: card.id, from }),
        Lifecycle::Retired(on) => {
            let successor = match (needs_media, card.media_successor) {
                (true, Some(media)) => Some(media),
                _ => card.successor,
            };
            let next = successor
                .and_then(by_id)
                .filter(|s| s.lifecycle(today) == Lifecycle::Served);
            match (policy, next) {
                (RetiredPolicy::Migrate, Some(next)) => Ok(Resolution {
                    card: next,
                    migrated_from: Some(card.id),
                    reason: Some(format!(
                        "{} was retired on {on}; served by its successor {}",
                        card.id, next.id
                    )),
                }),
                _ => Err(ResolveError::Retired {
                    id: card.id,
                    on,
                    successor,
                }),
            }
        }
    }
}

/// The cards served on `today`, in catalog order.
pub fn served(today: Date) -> impl Iterator<Item = &'static ModelCard> {
    MODELS
        .iter()
        .filter(move |card| card.lifecycle(today) == Lifecycle::Served)
}

/// For moonshot-v1-auto: the tier a prompt of this size is routed to.
pub fn auto_tier(card: &ModelCard, prompt_plus_max_tokens: u64) -> Option<&'static ModelCard> {
    card.auto_tiers
        .iter()
        .find(|(limit, _)| prompt_plus_max_tokens <= *limit)
        .and_then(|(_, id)| by_id(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE_K2_RETIREMENT: Date = Date::new(2026, 5, 24);
    const K2_RETIREMENT: Date = Date::new(2026, 5, 25);
    const BEFORE_V1_RETIREMENT: Date = Date::new(2026, 8, 30);
    const V1_RETIREMENT: Date = Date::new(2026, 8, 31);

    fn served_ids(today: Date) -> Vec<&'static str> {
        served(today).map(|c| c.id).collect()
    }

    #[test]
    fn every_seed_model_and_todays_models_are_listed() {
        for id in [
            "kimi-k2.6",
            "kimi-k2.5",
            "kimi-k2-0905-preview",
            "kimi-k2-0711-preview",
            "kimi-k2-turbo-preview",
            "kimi-k2-thinking",
            "kimi-k2-thinking-turbo",
            "moonshot-v1-8k",
            "moonshot-v1-32k",
            "moonshot-v1-128k",
            "moonshot-v1-auto",
            "moonshot-v1-8k-vision-preview",
            "moonshot-v1-32k-vision-preview",
            "moonshot-v1-128k-vision-preview",
            "kimi-k3",
            "kimi-k2.7-code",
            "kimi-k2.7-code-highspeed",
        ] {
            assert!(by_id(id).is_some(), "{id} missing");
        }
        assert_eq!(MODELS.len(), 17);
    }

    #[test]
    fn seed_prices_are_ucents_per_token() {
        let k26 = by_id("kimi-k2.6").unwrap();
        assert_eq!(
            k26.price,
            Price {
                input: 95,
                cached: Some(16),
                output: 400
            }
        );
        let k25 = by_id("kimi-k2.5").unwrap();
        assert_eq!(
            k25.price,
            Price {
                input: 60,
                cached: Some(10),
                output: 300
            }
        );
        assert_eq!(
            by_id("moonshot-v1-32k").unwrap().price,
            Price {
                input: 100,
                cached: None,
                output: 300
            }
        );
        assert_eq!(by_id("kimi-k2-turbo-preview").unwrap().price.output, 800);
    }

    #[test]
    fn served_lists_change_on_each_date() {
        let before = served_ids(BEFORE_K2_RETIREMENT);
        assert!(before.contains(&"kimi-k2-0905-preview"));
        assert!(
            !before.contains(&"kimi-k2.7-code"),
            "k2.7-code is served from 2026-06-12"
        );

        let after_k2 = served_ids(K2_RETIREMENT);
        assert!(!after_k2.iter().any(|id| id.starts_with("kimi-k2-")));
        assert!(after_k2.contains(&"moonshot-v1-8k"));

        assert!(served_ids(Date::new(2026, 6, 11))
            .iter()
            .all(|id| !id.starts_with("kimi-k2.7")));
        assert!(served_ids(Date::new(2026, 6, 12)).contains(&"kimi-k2.7-code"));

        assert!(served_ids(BEFORE_V1_RETIREMENT).contains(&"kimi-k2.5"));
        assert_eq!(
            served_ids(V1_RETIREMENT),
            vec![
                "kimi-k3",
                "kimi-k2.7-code",
                "kimi-k2.7-code-highspeed",
                "kimi-k2.6"
            ]
        );
    }

    #[test]
    fn names_resolve_case_insensitively() {
        for name in [
            "kimi",
            "KIMI-K26",
            "moonshot/kimi-k2.6",
            "moonshot:moonshot/kimi-k2.6",
            " kimi-k2.6 ",
        ] {
            assert_eq!(lookup(name).map(|c| c.id), Some("kimi-k2.6"), "{name}");
        }
        assert_eq!(lookup("kimi-k25").map(|c| c.id), Some("kimi-k2.5"));
        assert!(lookup("gpt-4o").is_none());
    }

    #[test]
    fn missing_model_is_the_default() {
        let r = resolve(None, V1_RETIREMENT, RetiredPolicy::Error, false).unwrap();
        assert_eq!(r.card.id, DEFAULT_MODEL);
        assert_eq!(r.migrated_from, None);
    }

    #[test]
    fn retired_model_migrates_on_its_date_not_before() {
        let r = resolve(
            Some("kimi-k2-0905-preview"),
            BEFORE_K2_RETIREMENT,
            RetiredPolicy::Migrate,
            false,
        )
        .unwrap();
        assert_eq!((r.card.id, r.migrated_from), ("kimi-k2-0905-preview", None));

        let r = resolve(
            Some("kimi-k2-0905-preview"),
            K2_RETIREMENT,
            RetiredPolicy::Migrate,
            false,
        )
        .unwrap();
        assert_eq!(
            (r.card.id, r.migrated_from),
            ("kimi-k2.6", Some("kimi-k2-0905-preview"))
        );
        assert!(r.reason.unwrap().contains("retired on 2026-05-25"));
    }

    #[test]
    fn retired_model_is_an_error_when_configured() {
        let err = resolve(
            Some("moonshot-v1-8k"),
            V1_RETIREMENT,
            RetiredPolicy::Error,
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "model 'moonshot-v1-8k' was retired on 2026-08-31; use 'kimi-k2.6' instead"
        );
        assert!(resolve(
            Some("moonshot-v1-8k"),
            BEFORE_V1_RETIREMENT,
            RetiredPolicy::Error,
            false
        )
        .is_ok());
    }

    #[test]
    fn retired_vision_model_with_media_migrates_to_a_vision_model() {
        let r = resolve(
            Some("kimi-k2.5"),
            V1_RETIREMENT,
            RetiredPolicy::Migrate,
            true,
        )
        .unwrap();
        assert_eq!(
            r.card.id, "kimi-k2.6",
            "k2.6 reads images and costs less than k3"
        );
        assert!(r.card.accepts(Modality::Image) && r.card.accepts(Modality::Video));
        let r = resolve(
            Some("kimi-k2.5"),
            V1_RETIREMENT,
            RetiredPolicy::Migrate,
            false,
        )
        .unwrap();
        assert_eq!(r.card.id, "kimi-k2.6");
    }

    #[test]
    fn unreleased_and_unknown_models_are_errors() {
        let err = resolve(
            Some("kimi-k2.7-code"),
            Date::new(2026, 6, 1),
            RetiredPolicy::Migrate,
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "model 'kimi-k2.7-code' is served from 2026-06-12, not yet"
        );
        let err =
            resolve(Some("gpt-4o"), V1_RETIREMENT, RetiredPolicy::Migrate, false).unwrap_err();
        assert!(matches!(err, ResolveError::Unknown(_)));
    }

    #[test]
    fn auto_routes_by_size() {
        let auto = by_id("moonshot-v1-auto").unwrap();
        assert_eq!(auto_tier(auto, 8_192).unwrap().id, "moonshot-v1-8k");
        assert_eq!(auto_tier(auto, 8_193).unwrap().id, "moonshot-v1-32k");
        assert_eq!(auto_tier(auto, 40_000).unwrap().id, "moonshot-v1-128k");
    }

    #[test]
    fn every_successor_exists_and_outlives_its_model() {
        for card in MODELS {
            for next in card.successor.iter().chain(card.media_successor.iter()) {
                let next =
                    by_id(next).unwrap_or_else(|| panic!("{}'s successor {next} missing", card.id));
                assert!(next.retired_on.is_none() || next.retired_on > card.retired_on);
            }
            if card.retired_on.is_some() {
                assert!(
                    card.successor.is_some(),
                    "{} retires without a successor",
                    card.id
                );
            }
        }
    }

    #[test]
    fn kimi_k26_reads_text_image_and_video() {
        let k26 = by_id("kimi-k2.6").unwrap();
        assert_eq!(k26.input, TEXT_IMAGE_VIDEO);
        for retired_vision in ["moonshot-v1-8k-vision-preview", "kimi-k2.5"] {
            let r = resolve(
                Some(retired_vision),
                V1_RETIREMENT,
                RetiredPolicy::Migrate,
                true,
            )
            .unwrap();
            assert_eq!(r.card.id, "kimi-k2.6", "{retired_vision}");
        }
    }

    #[test]
    fn release_dates_hide_models_that_did_not_exist_yet() {
        assert!(!served_ids(Date::new(2026, 7, 15)).contains(&"kimi-k3"));
        assert!(served_ids(Date::new(2026, 7, 16)).contains(&"kimi-k3"));
        assert!(!served_ids(Date::new(2026, 4, 20)).contains(&"kimi-k2.6"));
        assert!(served_ids(Date::new(2026, 4, 21)).contains(&"kimi-k2.6"));
        let err = resolve(
            Some("kimi-k3"),
            Date::new(2026, 7, 1),
            RetiredPolicy::Migrate,
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "model 'kimi-k3' is served from 2026-07-16, not yet"
        );
    }

    #[test]
    fn only_kimi_k3_refuses_logprobs_and_logit_bias_and_takes_system_tools() {
        let k3 = by_id("kimi-k3").unwrap();
        assert!(matches!(k3.fields.logprobs, FieldSupport::Refused(_)));
        assert!(matches!(k3.fields.logit_bias, FieldSupport::Refused(_)));
        assert_eq!(k3.fields.prediction, FieldSupport::Forwarded);
        assert!(k3.system_tools);
        for card in MODELS.iter().filter(|c| c.id != "kimi-k3") {
            assert_eq!(card.fields, FIELDS_FORWARDED, "{}", card.id);
            assert!(!card.system_tools, "{}", card.id);
        }
    }
}
