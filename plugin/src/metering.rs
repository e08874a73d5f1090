//! Usage -> money, in integer microcents (MOONSHOT-API.md §2, §4, §5).
//!
//! Moonshot counts cached tokens INSIDE prompt_tokens, so a bill has three
//! token lines (uncached input, cached input, output) plus web-search calls.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::catalog::{self, ModelCard};
use crate::error::{ErrorKind, ProviderError};

/// Most tokens one response may report for any one count: 100 million,
/// hundreds of times the largest context window. More is not a usage
/// figure but a hostile or broken upstream, and is never billed.
pub const MAX_PLAUSIBLE_TOKENS: u64 = 100_000_000;

fn implausible(what: &str, value: u64) -> ProviderError {
    ProviderError::new(
        ErrorKind::Protocol,
        format!(
            "upstream reported {value} {what}, beyond any context window: the usage is not billed"
        ),
    )
    .with_code("implausible_usage")
}

/// Money that does not fit in a u64 of microcents: never billed wrong.
fn overflow() -> ProviderError {
    ProviderError::new(
        ErrorKind::Protocol,
        "the usage is too large to bill (microcents overflow)",
    )
    .with_code("implausible_usage")
}

/// Puter's `source` for every cost row.
pub const COST_SOURCE: &str = "driver:aiChat/moonshot";

/// Token counts of one completion (all rounds of a web-search loop summed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// All input tokens, cached ones included.
    pub prompt_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
    /// Input tokens served from Moonshot's prompt cache.
    pub cached_tokens: u64,
    /// `$web_search` tool-call responses, each billed a flat fee.
    pub web_search_calls: u64,
    /// True when some count is our estimate because Moonshot sent no usage.
    pub estimated: bool,
}

impl Usage {
    pub fn uncached_prompt_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_sub(self.cached_tokens)
    }

    /// Adds another round's usage (web-search loop); fails rather than wraps.
    pub fn add(&mut self, other: &Usage) -> Result<(), ProviderError> {
        let sum = |a: u64, b: u64| a.checked_add(b).ok_or_else(overflow);
        *self = Usage {
            prompt_tokens: sum(self.prompt_tokens, other.prompt_tokens)?,
            completion_tokens: sum(self.completion_tokens, other.completion_tokens)?,
            cached_tokens: sum(self.cached_tokens, other.cached_tokens)?,
            web_search_calls: sum(self.web_search_calls, other.web_search_calls)?,
            estimated: self.estimated || other.estimated,
        };
        Ok(())
    }
}

/// Moonshot's usage object as it appears on the wire, tolerant of every
/// shape seen: `cached_tokens` at the top (Moonshot) or under
/// `prompt_tokens_details` (some gateways), any field missing or null.
#[derive(Deserialize, Debug, Default, Clone, Copy)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize, Debug, Default, Clone, Copy)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

impl WireUsage {
    /// The usage, or a protocol error when a count is beyond belief.
    pub fn to_usage(self) -> Result<Usage, ProviderError> {
        let checked = |what: &str, value: Option<u64>| match value.unwrap_or(0) {
            n if n > MAX_PLAUSIBLE_TOKENS => Err(implausible(what, n)),
            n => Ok(n),
        };
        let prompt = checked("prompt tokens", self.prompt_tokens)?;
        let cached = checked(
            "cached tokens",
            self.cached_tokens
                .or(self.prompt_tokens_details.and_then(|d| d.cached_tokens)),
        )?
        .min(prompt);
        Ok(Usage {
            prompt_tokens: prompt,
            completion_tokens: checked("completion tokens", self.completion_tokens)?,
            cached_tokens: cached,
            web_search_calls: 0,
            estimated: false,
        })
    }
}

/// One priced line of a bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostLine {
    pub usage_type: String,
    pub units: u64,
    pub ucents_per_unit: u64,
    pub ucents: u64,
}

/// What a completion costs, priced from the catalog entry that served it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bill {
    pub model: &'static str,
    pub lines: Vec<CostLine>,
    pub total_ucents: u64,
}

fn usage_type(model: &str, kind: &str) -> String {
    format!("moonshot:{model}:{kind}")
}

const WEB_SEARCH_USAGE_TYPE: &str = "moonshot:web-search:calls";

impl CostLine {
    fn new(
        usage_type: String,
        units: u64,
        ucents_per_unit: u64,
    ) -> Result<CostLine, ProviderError> {
        Ok(CostLine {
            usage_type,
            units,
            ucents_per_unit,
            ucents: units.checked_mul(ucents_per_unit).ok_or_else(overflow)?,
        })
    }
}

/// Prices `usage` at `card`'s rates. Cached tokens are billed at the cache
/// price, or at the input price where the model has none. Checked
/// arithmetic: a bill that would overflow is an error, never a wrong sum.
pub fn bill(
    card: &'static ModelCard,
    usage: &Usage,
    web_search_fee_ucents: u64,
) -> Result<Bill, ProviderError> {
    let price = card.price;
    usage
        .prompt_tokens
        .checked_add(usage.completion_tokens)
        .ok_or_else(overflow)?;
    let mut lines = vec![
        CostLine::new(
            usage_type(card.id, "input-tokens"),
            usage.uncached_prompt_tokens(),
            price.input,
        )?,
        CostLine::new(
            usage_type(card.id, "cached-tokens"),
            usage.cached_tokens,
            price.cached.unwrap_or(price.input),
        )?,
        CostLine::new(
            usage_type(card.id, "output-tokens"),
            usage.completion_tokens,
            price.output,
        )?,
    ];
    if usage.web_search_calls > 0 {
        lines.push(CostLine::new(
            WEB_SEARCH_USAGE_TYPE.to_string(),
            usage.web_search_calls,
            web_search_fee_ucents,
        )?);
    }
    let total_ucents = lines
        .iter()
        .try_fold(0u64, |sum, l| sum.checked_add(l.ucents))
        .ok_or_else(overflow)?;
    Ok(Bill {
        model: card.id,
        lines,
        total_ucents,
    })
}

/// The usage object of results and of the stream's usage part: Puter's token
/// fields, plus the bill.
pub fn usage_json(usage: &Usage, bill: &Bill) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "uncached_prompt_tokens": usage.uncached_prompt_tokens(),
        // Cannot saturate: `bill` refused a usage whose sum overflows.
        "total_tokens": usage.prompt_tokens.saturating_add(usage.completion_tokens),
        "web_search_calls": usage.web_search_calls,
        "estimated": usage.estimated,
        "cost": {
            "model": bill.model,
            "lines": bill.lines.iter().map(|l| json!({
                "usageType": l.usage_type,
                "units": l.units,
                "ucentsPerUnit": l.ucents_per_unit,
                "ucents": l.ucents,
            })).collect::<Vec<_>>(),
            "total_ucents": bill.total_ucents,
            // 1 cent = 1,000,000 microcents; a display figure derived from the integer.
            "usd_cents": bill.total_ucents as f64 / 1_000_000.0,
        },
    })
}

/// Puter's getReportedCosts() rows for the given cards, plus web search.
pub fn reported_costs<'a>(
    cards: impl Iterator<Item = &'a ModelCard>,
    web_search_fee_ucents: u64,
) -> Value {
    let row = |usage_type: String, ucents: u64, unit: &str| json!({"usageType": usage_type, "ucentsPerUnit": ucents, "unit": unit, "source": COST_SOURCE});
    let mut rows = Vec::new();
    for card in cards {
        rows.push(row(
            usage_type(card.id, "input-tokens"),
            card.price.input,
            "token",
        ));
        rows.push(row(
            usage_type(card.id, "cached-tokens"),
            card.price.cached.unwrap_or(card.price.input),
            "token",
        ));
        rows.push(row(
            usage_type(card.id, "output-tokens"),
            card.price.output,
            "token",
        ));
    }
    rows.push(row(
        WEB_SEARCH_USAGE_TYPE.to_string(),
        web_search_fee_ucents,
        "call",
    ));
    Value::Array(rows)
}

/// The card that actually served, and so sets the price: what the response
/// names when it is in the catalog (moonshot-v1-auto's tier), else what was
/// asked for; an auto model without a named tier is priced by the size the
/// request had (`prompt_tokens` plus the `max_completion_tokens` asked).
pub fn served_card(
    asked: &'static ModelCard,
    named: Option<&str>,
    prompt_tokens: u64,
    max_completion_tokens: u64,
) -> &'static ModelCard {
    match named.and_then(catalog::lookup) {
        Some(card) if card.id != asked.id => card,
        _ => {
            if !asked.auto_tiers.is_empty() {
                if let Some(tier) =
                    catalog::auto_tier(asked, prompt_tokens.saturating_add(max_completion_tokens))
                {
                    return tier;
                }
            }
            asked
        }
    }
}

/// Usage for a round Moonshot sent none for: prompt tokens as the tokenizer
/// endpoint `counted` them when it answered plausibly, else our estimate of
/// `prompt`; output tokens estimated from what was `received`. Marked
/// `estimated`.
pub fn estimated_usage(prompt: &str, counted: Option<u64>, received: &[&str]) -> Usage {
    // A tokenizer answer beyond belief is not a count to bill.
    let counted = counted.filter(|&n| n <= MAX_PLAUSIBLE_TOKENS);
    Usage {
        prompt_tokens: counted.unwrap_or_else(|| estimate_tokens(prompt)),
        completion_tokens: received.iter().map(|text| estimate_tokens(text)).sum(),
        estimated: true,
        ..Usage::default()
    }
}

/// Rough token estimate for text when Moonshot sends no usage: about four
/// bytes of English or one CJK character per token. Used only when the
/// tokenizer endpoint cannot be asked; results say `estimated: true`.
pub fn estimate_tokens(text: &str) -> u64 {
    let (mut ascii, mut other) = (0u64, 0u64);
    for ch in text.chars() {
        if ch.is_ascii() {
            ascii += 1
        } else {
            other += 1
        }
    }
    ascii.div_ceil(4) + other
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::by_id;

    fn k26() -> &'static ModelCard {
        by_id("kimi-k2.6").unwrap()
    }

    #[test]
    fn one_million_uncached_input_tokens_on_k26() {
        let usage = Usage {
            prompt_tokens: 1_000_000,
            ..Usage::default()
        };
        // 1,000,000 tokens x 95 ucents = 95,000,000 ucents = 95 cents = $0.95.
        assert_eq!(
            bill(k26(), &usage, 500_000).unwrap().total_ucents,
            95_000_000
        );
    }

    #[test]
    fn cache_hits_are_billed_at_the_cache_price() {
        let usage = Usage {
            prompt_tokens: 10_000,
            cached_tokens: 8_000,
            completion_tokens: 500,
            ..Usage::default()
        };
        let b = bill(k26(), &usage, 500_000).unwrap();
        // 2,000 x 95 + 8,000 x 16 + 500 x 400 = 190,000 + 128,000 + 200,000 = 518,000.
        assert_eq!(b.lines[0].ucents, 190_000);
        assert_eq!(b.lines[1].ucents, 128_000);
        assert_eq!(b.lines[2].ucents, 200_000);
        assert_eq!(b.total_ucents, 518_000);
        assert_eq!(b.lines[1].usage_type, "moonshot:kimi-k2.6:cached-tokens");
    }

    #[test]
    fn v1_models_bill_cached_tokens_as_input() {
        let v1 = by_id("moonshot-v1-32k").unwrap();
        let usage = Usage {
            prompt_tokens: 1_000,
            cached_tokens: 400,
            completion_tokens: 10,
            ..Usage::default()
        };
        // 600 x 100 + 400 x 100 + 10 x 300 = 60,000 + 40,000 + 3,000.
        assert_eq!(bill(v1, &usage, 0).unwrap().total_ucents, 103_000);
    }

    #[test]
    fn web_search_calls_add_the_fee() {
        let usage = Usage {
            prompt_tokens: 100,
            completion_tokens: 10,
            web_search_calls: 2,
            ..Usage::default()
        };
        let b = bill(k26(), &usage, 500_000).unwrap();
        // 100 x 95 + 10 x 400 + 2 x 500,000 = 9,500 + 4,000 + 1,000,000.
        assert_eq!(b.total_ucents, 1_013_500);
        assert_eq!(b.lines[3].usage_type, "moonshot:web-search:calls");
    }

    #[test]
    fn wire_usage_reads_both_cached_shapes() {
        let top: WireUsage = serde_json::from_value(
            json!({"prompt_tokens":50,"completion_tokens":5,"cached_tokens":20}),
        )
        .unwrap();
        assert_eq!(top.to_usage().unwrap().cached_tokens, 20);
        let nested: WireUsage =
            serde_json::from_value(json!({"prompt_tokens":50,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":30}}))
                .unwrap();
        assert_eq!(nested.to_usage().unwrap().cached_tokens, 30);
        let nulls: WireUsage =
            serde_json::from_value(json!({"prompt_tokens":null,"cached_tokens":null})).unwrap();
        assert_eq!(nulls.to_usage().unwrap(), Usage::default());
        let overclaimed: WireUsage =
            serde_json::from_value(json!({"prompt_tokens":5,"cached_tokens":9})).unwrap();
        assert_eq!(overclaimed.to_usage().unwrap().uncached_prompt_tokens(), 0);
    }

    #[test]
    fn absurd_usage_is_refused_not_billed() {
        // 2^62 completion tokens wrapped to a bill of 0 ucents.
        let wire: WireUsage =
            serde_json::from_value(json!({"prompt_tokens":1,"completion_tokens":1u64 << 62}))
                .unwrap();
        let err = wire.to_usage().unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_str()),
            (ErrorKind::Protocol, "implausible_usage")
        );
        for field in ["prompt_tokens", "cached_tokens"] {
            let wire: WireUsage =
                serde_json::from_value(json!({ field: MAX_PLAUSIBLE_TOKENS + 1 })).unwrap();
            assert!(wire.to_usage().is_err(), "{field}");
        }
        let at_the_bound: WireUsage = serde_json::from_value(
            json!({"prompt_tokens":MAX_PLAUSIBLE_TOKENS,"completion_tokens":MAX_PLAUSIBLE_TOKENS}),
        )
        .unwrap();
        let usage = at_the_bound.to_usage().unwrap();
        // 10^8 x 95 + 10^8 x 400: plain integers, no overflow.
        assert_eq!(bill(k26(), &usage, 0).unwrap().total_ucents, 49_500_000_000);
    }

    #[test]
    fn overflowing_arithmetic_is_an_error() {
        let huge = Usage {
            completion_tokens: 1 << 62,
            ..Usage::default()
        };
        assert_eq!(bill(k26(), &huge, 0).unwrap_err().code, "implausible_usage");
        let calls = Usage {
            web_search_calls: 2,
            ..Usage::default()
        };
        assert!(bill(k26(), &calls, u64::MAX / 2 + 1).is_err());
        let lines = Usage {
            prompt_tokens: u64::MAX / 95,
            completion_tokens: u64::MAX / 400,
            ..Usage::default()
        };
        assert!(
            bill(k26(), &lines, 0).is_err(),
            "the sum of the lines overflows"
        );
        let mut total = Usage {
            prompt_tokens: u64::MAX,
            ..Usage::default()
        };
        assert!(total
            .add(&Usage {
                prompt_tokens: 1,
                ..Usage::default()
            })
            .is_err());
        assert_eq!(
            total.prompt_tokens,
            u64::MAX,
            "a failed add changes nothing"
        );
    }

    #[test]
    fn reported_costs_rows() {
        let rows = reported_costs(std::iter::once(k26()), 500_000);
        assert_eq!(
            rows,
            json!([
                {"usageType":"moonshot:kimi-k2.6:input-tokens","ucentsPerUnit":95,"unit":"token","source":"driver:aiChat/moonshot"},
                {"usageType":"moonshot:kimi-k2.6:cached-tokens","ucentsPerUnit":16,"unit":"token","source":"driver:aiChat/moonshot"},
                {"usageType":"moonshot:kimi-k2.6:output-tokens","ucentsPerUnit":400,"unit":"token","source":"driver:aiChat/moonshot"},
                {"usageType":"moonshot:web-search:calls","ucentsPerUnit":500000,"unit":"call","source":"driver:aiChat/moonshot"}
            ])
        );
    }

    #[test]
    fn estimates() {
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        assert_eq!(estimate_tokens("你好"), 2);
        assert_eq!(estimate_tokens(""), 0);
    }

    #[test]
    fn the_served_card_is_the_named_one_else_the_auto_tier_by_size() {
        let auto = by_id("moonshot-v1-auto").unwrap();
        // The response names its tier: that one serves.
        assert_eq!(
            served_card(auto, Some("moonshot-v1-32k"), 10, 0).id,
            "moonshot-v1-32k"
        );
        // No tier named: prompt plus max_completion_tokens picks it.
        assert_eq!(served_card(auto, None, 5_000, 3_000).id, "moonshot-v1-8k");
        assert_eq!(served_card(auto, None, 5_000, 4_000).id, "moonshot-v1-32k");
        assert_eq!(
            served_card(auto, Some("auto"), 40_000, 0).id,
            "moonshot-v1-128k"
        );
        // A model outside the catalog, or the one asked for, changes nothing.
        assert_eq!(served_card(k26(), Some("kimi-k2.6"), 10, 0).id, "kimi-k2.6");
        assert_eq!(served_card(k26(), Some("gpt-9"), 10, 0).id, "kimi-k2.6");
        assert_eq!(served_card(k26(), Some("kimi-k3"), 10, 0).id, "kimi-k3");
    }

    #[test]
    fn estimated_usage_trusts_a_plausible_count_and_estimates_the_rest() {
        let usage = estimated_usage("abcdefgh", Some(42), &["abcd", "你好", ""]);
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (42, 3));
        assert!(usage.estimated);
        // A count beyond belief is replaced by our estimate of the prompt.
        let usage = estimated_usage("abcdefgh", Some(MAX_PLAUSIBLE_TOKENS + 1), &[]);
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (2, 0));
        let usage = estimated_usage("abcdefgh", None, &[]);
        assert_eq!(usage.prompt_tokens, 2);
    }
}
