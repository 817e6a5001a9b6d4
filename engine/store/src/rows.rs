//! View rows exactly as SPEC §7 prints them: field names, order, money as two-decimal strings,
//! time as ISO-8601 UTC. `Ord` on every row is the dump's sort order, so a `BTreeMap` of rows is
//! already sorted for dumping and for the API.

use serde::{Serialize, Serializer};
use sources::{Micros, Money};
use std::cmp::Ordering;
use std::fmt;

/// A window: a tumbling size (microseconds, as given to `--windows`) or `all`.
/// Ordered by size with `All` last, as the dump sorts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

pub fn ser_money<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(m)
}

pub fn ser_opt_money<S: Serializer>(m: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.collect_str(m),
        None => s.serialize_none(),
    }
}

pub fn ser_opt_time<S: Serializer>(t: &Option<Micros>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

pub fn ser_time<S: Serializer>(t: &Micros, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

/// A percentage with exactly two decimals, as hundredths (`-12.5%` is `Pct2(-1250)`); printed as
/// a JSON number (`-12.5`), never computed through floating point.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pct2(pub i64);

impl Serialize for Pct2 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        let text = format!("{sign}{}.{:02}", a / 100, a % 100);
        // The text is an exact decimal; serde_json's arbitrary_precision is not enabled, so go
        // through RawValue to print the digits as they are.
        let raw =
            serde_json::value::RawValue::from_string(text).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
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

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RevenueRow {
    pub window: Window,
    #[serde(serialize_with = "ser_opt_time")]
    pub window_start: Option<Micros>,
    pub order_count: i64,
    #[serde(serialize_with = "ser_money")]
    pub revenue: Money,
    #[serde(serialize_with = "ser_money")]
    pub avg_order_value: Money,
    #[serde(serialize_with = "ser_money")]
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

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TopProductRow {
    pub window: Window,
    #[serde(serialize_with = "ser_opt_time")]
    pub window_start: Option<Micros>,
    /// `None` = the global scope (sorts before categories).
    pub category_id: Option<i64>,
    pub metric: Metric,
    pub rank: u32,
    pub product_id: i64,
    pub quantity: i64,
    #[serde(serialize_with = "ser_money")]
    pub revenue: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TrendingRow {
    pub window: Window,
    #[serde(serialize_with = "ser_opt_time")]
    pub window_start: Option<Micros>,
    pub rank: u32,
    pub product_id: i64,
    pub quantity: i64,
    pub prev_quantity: i64,
    pub growth: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CategorySalesRow {
    pub window: Window,
    #[serde(serialize_with = "ser_opt_time")]
    pub window_start: Option<Micros>,
    pub category_id: i64,
    pub quantity: i64,
    #[serde(serialize_with = "ser_money")]
    pub revenue: Money,
    pub order_count: i64,
}

/// Fraud rules, in the dump's sort order (by name).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FraudAlertRow {
    pub rule: Rule,
    pub customer_id: Option<i64>,
    pub order_id: Option<i64>,
    #[serde(serialize_with = "ser_time")]
    pub start: Micros,
    pub order_count: i64,
    #[serde(serialize_with = "ser_opt_money")]
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

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AlsoBoughtRow {
    pub product_id: i64,
    pub rank: u32,
    pub other_product_id: i64,
    pub order_count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RecommendationRow {
    pub customer_id: i64,
    pub rank: u32,
    pub product_id: i64,
    pub score: i64,
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
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"window":"1m","window_start":"1970-01-01T00:00:00Z","order_count":3,"revenue":"10.00","avg_order_value":"3.33","prev_revenue":"8.00","trend_pct":25.00}"#
        );
    }
}
