//! View rows exactly as SPEC §7 prints them: field names, order, money as two-decimal strings,
//! time as ISO-8601 UTC. `Ord` on every row is the dump's sort order, so a `BTreeMap` of rows is
//! already sorted for dumping and for the API.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sources::{Micros, Money};
use std::cmp::Ordering;
use std::fmt;

/// A window: a tumbling size (microseconds, as given to `--windows`) or `all`.
/// Ordered by size with `All` last, as the dump sorts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Window {
    Size(i64),
    All,
}

impl Window {
    /// The label given to `--windows`: `1m`, `5m`, `1h`, `30s`, `1d`, or `all`.
    pub fn label(self) -> String {
        match self {
            Window::All => "all".into(),
            Window::Size(us) => {
                let s = us / 1_000_000;
                if us % 1_000_000 != 0 {
                    format!("{}ms", us / 1000)
                } else if s % 86_400 == 0 {
                    format!("{}d", s / 86_400)
                } else if s % 3600 == 0 {
                    format!("{}h", s / 3600)
                } else if s % 60 == 0 {
                    format!("{}m", s / 60)
                } else {
                    format!("{s}s")
                }
            }
        }
    }

    /// Parses a label (`1m`, `5m`, `1h`, `30s`, `2d`, `250ms`, `all`).
    pub fn parse(label: &str) -> Result<Window, String> {
        let l = label.trim();
        if l == "all" {
            return Ok(Window::All);
        }
        let split = l.find(|c: char| !c.is_ascii_digit()).unwrap_or(l.len());
        let (n, unit) = l.split_at(split);
        let n: i64 = n
            .parse()
            .map_err(|_| format!("bad window {label:?}: expected e.g. 1m, 5m, 1h"))?;
        let mult = match unit {
            "ms" => 1_000,
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            "d" => 86_400_000_000,
            _ => {
                return Err(format!(
                    "bad window unit in {label:?}: use ms, s, m, h or d"
                ))
            }
        };
        if n <= 0 {
            return Err(format!("bad window {label:?}: must be positive"));
        }
        Ok(Window::Size(n * mult))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// A percentage with exactly two decimals, as hundredths (`-12.5%` is `Pct2(-1250)`); printed as
/// a JSON number (`-12.5`), never computed through floating point.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pct2(pub i64);

impl Pct2 {
    /// As a JSON number with (at most) two decimals. The value is exact hundredths; the
    /// conversion to a JSON number goes through the nearest `f64`, whose shortest printing is
    /// the same two-decimal text (this is a percentage, never money).
    pub fn to_json(self) -> Value {
        let text = format!(
            "{}{}.{:02}",
            if self.0 < 0 { "-" } else { "" },
            self.0.unsigned_abs() / 100,
            self.0.unsigned_abs() % 100
        );
        text.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn money(m: Money) -> Value {
    Value::String(m.to_string())
}

fn opt_time(t: Option<Micros>) -> Value {
    t.map(|t| Value::String(t.to_string()))
        .unwrap_or(Value::Null)
}

/// `round(num / den)` with halves away from zero, in integers. `den` must be positive.
pub fn div_round_half_away(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let q = num / den;
    let r = num % den;
    if 2 * r.abs() >= den {
        q + num.signum()
    } else {
        q
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RevenueRow {
    pub window: Window,
    pub window_start: Option<Micros>,
    pub order_count: i64,
    pub revenue: Money,
    pub avg_order_value: Money,
    pub prev_revenue: Money,
    pub trend_pct: Option<Pct2>,
}

impl RevenueRow {
    /// The row for a window from its totals: average rounded half away from zero to the cent,
    /// trend = (revenue − prev) / prev × 100 rounded half away from zero to 2 dp, null when
    /// prev is 0.
    pub fn new(
        window: Window,
        start: Micros,
        order_count: i64,
        revenue: Money,
        prev: Money,
    ) -> Self {
        let avg = if order_count > 0 {
            Money(div_round_half_away(revenue.0 as i128, order_count as i128) as i64)
        } else {
            Money::ZERO
        };
        let trend_pct = if prev.0 == 0 {
            None
        } else {
            // hundredths of a percent: (rev - prev) * 10000 / prev
            let num = (revenue.0 as i128 - prev.0 as i128) * 10_000;
            let den = prev.0 as i128;
            let v = if den > 0 {
                div_round_half_away(num, den)
            } else {
                div_round_half_away(-num, -den)
            };
            Some(Pct2(v as i64))
        };
        RevenueRow {
            window,
            window_start: Some(start),
            order_count,
            revenue,
            avg_order_value: avg,
            prev_revenue: prev,
            trend_pct,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Metric {
    Quantity,
    Revenue,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Quantity => "quantity",
            Metric::Revenue => "revenue",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopProductRow {
    pub window: Window,
    pub window_start: Option<Micros>,
    /// `None` = the global scope (sorts before categories).
    pub category_id: Option<i64>,
    pub metric: Metric,
    pub rank: u32,
    pub product_id: i64,
    pub quantity: i64,
    pub revenue: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TrendingRow {
    pub window: Window,
    pub window_start: Option<Micros>,
    pub rank: u32,
    pub product_id: i64,
    pub quantity: i64,
    pub prev_quantity: i64,
    pub growth: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CategorySalesRow {
    pub window: Window,
    pub window_start: Option<Micros>,
    pub category_id: i64,
    pub quantity: i64,
    pub revenue: Money,
    pub order_count: i64,
}

/// Fraud rules, in the dump's sort order (by name).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rule {
    FrequentOrders,
    HighValue,
    OrderBurst,
    RepeatedAmount,
}

impl Rule {
    pub const ALL: [Rule; 4] = [
        Rule::FrequentOrders,
        Rule::HighValue,
        Rule::OrderBurst,
        Rule::RepeatedAmount,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::FrequentOrders => "frequent_orders",
            Rule::HighValue => "high_value",
            Rule::OrderBurst => "order_burst",
            Rule::RepeatedAmount => "repeated_amount",
        }
    }
    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FraudAlertRow {
    pub rule: Rule,
    pub customer_id: Option<i64>,
    pub order_id: Option<i64>,
    pub start: Micros,
    pub order_count: i64,
    pub amount: Option<Money>,
}

impl Ord for FraudAlertRow {
    /// Dump order: rule, customer_id, order_id, start, amount (then order_count, for totality).
    fn cmp(&self, o: &Self) -> Ordering {
        (
            self.rule,
            self.customer_id,
            self.order_id,
            self.start,
            self.amount,
            self.order_count,
        )
            .cmp(&(
                o.rule,
                o.customer_id,
                o.order_id,
                o.start,
                o.amount,
                o.order_count,
            ))
    }
}
impl PartialOrd for FraudAlertRow {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlsoBoughtRow {
    pub product_id: i64,
    pub rank: u32,
    pub other_product_id: i64,
    pub order_count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecommendationRow {
    pub customer_id: i64,
    pub rank: u32,
    pub product_id: i64,
    pub score: i64,
}

/// JSON in the dump format of SPEC §7: exactly the listed fields, in order, money as
/// two-decimal strings, time as ISO-8601 UTC, `window` as its label.
pub trait ToJson {
    fn to_json(&self) -> Value;
}

impl ToJson for RevenueRow {
    fn to_json(&self) -> Value {
        json!({"window": self.window.label(), "window_start": opt_time(self.window_start),
            "order_count": self.order_count, "revenue": money(self.revenue),
            "avg_order_value": money(self.avg_order_value), "prev_revenue": money(self.prev_revenue),
            "trend_pct": self.trend_pct.map(Pct2::to_json).unwrap_or(Value::Null)})
    }
}

impl ToJson for TopProductRow {
    fn to_json(&self) -> Value {
        json!({"window": self.window.label(), "window_start": opt_time(self.window_start),
            "category_id": self.category_id, "metric": self.metric.as_str(), "rank": self.rank,
            "product_id": self.product_id, "quantity": self.quantity, "revenue": money(self.revenue)})
    }
}

impl ToJson for TrendingRow {
    fn to_json(&self) -> Value {
        json!({"window": self.window.label(), "window_start": opt_time(self.window_start),
            "rank": self.rank, "product_id": self.product_id, "quantity": self.quantity,
            "prev_quantity": self.prev_quantity, "growth": self.growth})
    }
}

impl ToJson for CategorySalesRow {
    fn to_json(&self) -> Value {
        json!({"window": self.window.label(), "window_start": opt_time(self.window_start),
            "category_id": self.category_id, "quantity": self.quantity,
            "revenue": money(self.revenue), "order_count": self.order_count})
    }
}

impl ToJson for FraudAlertRow {
    fn to_json(&self) -> Value {
        json!({"rule": self.rule.as_str(), "customer_id": self.customer_id, "order_id": self.order_id,
            "start": self.start.to_string(), "order_count": self.order_count,
            "amount": self.amount.map(money).unwrap_or(Value::Null)})
    }
}

impl ToJson for AlsoBoughtRow {
    fn to_json(&self) -> Value {
        json!({"product_id": self.product_id, "rank": self.rank,
            "other_product_id": self.other_product_id, "order_count": self.order_count})
    }
}

impl ToJson for RecommendationRow {
    fn to_json(&self) -> Value {
        json!({"customer_id": self.customer_id, "rank": self.rank, "product_id": self.product_id,
            "score": self.score})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_rounding() {
        for l in ["1m", "5m", "1h", "30s", "1d", "all", "250ms"] {
            assert_eq!(Window::parse(l).unwrap().label(), l);
        }
        assert!(Window::Size(60_000_000) < Window::All);
        assert_eq!(div_round_half_away(5, 2), 3);
        assert_eq!(div_round_half_away(-5, 2), -3);
        assert_eq!(div_round_half_away(4, 3), 1);
        let r = RevenueRow::new(
            Window::Size(60_000_000),
            Micros(0),
            3,
            Money(1000),
            Money(800),
        );
        assert_eq!(r.avg_order_value, Money(333));
        assert_eq!(r.trend_pct, Some(Pct2(2500)));
        let j = serde_json::to_string(&r.to_json()).unwrap();
        assert_eq!(
            j,
            r#"{"window":"1m","window_start":"1970-01-01T00:00:00Z","order_count":3,"revenue":"10.00","avg_order_value":"3.33","prev_revenue":"8.00","trend_pct":25.0}"#
        );
    }
}
