//! Query-string parsing with precise 400s: every handler lists the parameters it accepts, so a
//! typo (`?limt=5`) is reported instead of silently ignored.

use crate::error::ApiError;
use actix_web::HttpRequest;
use sources::Lsn;
use view_store::Window;

/// Accepted on every route: the token for clients that cannot send headers (EventSource).
pub const ACCESS_TOKEN: &str = "access_token";

pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses the query string, rejecting unknown and repeated parameters.
    pub fn parse(req: &HttpRequest, allowed: &[&str]) -> Result<Params, ApiError> {
        let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map_err(|e| ApiError::bad("query", format!("malformed query string: {e}")))?
            .into_inner();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if k != ACCESS_TOKEN && !allowed.contains(&k.as_str()) {
                let hint = if allowed.is_empty() {
                    "this route takes no parameters".to_string()
                } else {
                    format!("accepted: {}", allowed.join(", "))
                };
                return Err(ApiError::bad(
                    k,
                    format!("unknown parameter {k:?} ({hint})"),
                ));
            }
            if pairs[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(ApiError::bad(k, format!("parameter {k:?} given twice")));
            }
        }
        Ok(Params { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer in `[min, max]`, `default` when absent.
    pub fn int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => {
                let n: i64 = v.trim().parse().map_err(|_| {
                    ApiError::bad(name, format!("{name} must be an integer, got {v:?}"))
                })?;
                if n < min || n > max {
                    return Err(ApiError::bad(
                        name,
                        format!("{name} must be between {min} and {max}, got {n}"),
                    ));
                }
                Ok(n)
            }
        }
    }

    /// An optional id (any i64).
    pub fn opt_id(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name).map(|v| parse_id(name, v)).transpose()
    }

    pub fn window(&self, name: &str) -> Result<Option<Window>, ApiError> {
        self.get(name)
            .map(|v| Window::parse(v).map_err(|e| ApiError::bad(name, e)))
            .transpose()
    }

    /// `min_lsn` or its alias `as_of`: Postgres LSN text (`16/B374D848`) or an integer.
    pub fn min_lsn(&self) -> Result<Option<Lsn>, ApiError> {
        let (name, v) = match (self.get("min_lsn"), self.get("as_of")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad(
                    "as_of",
                    "give either min_lsn or as_of, not both",
                ))
            }
            (Some(v), None) => ("min_lsn", v),
            (None, Some(v)) => ("as_of", v),
            (None, None) => return Ok(None),
        };
        v.parse::<Lsn>().map(Some).map_err(|e| {
            ApiError::bad(
                name,
                format!("{e}; expected a Postgres LSN like 16/B374D848 or an integer"),
            )
        })
    }
}

pub fn parse_id(name: &str, v: &str) -> Result<i64, ApiError> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| ApiError::bad(name, format!("{name} must be an integer id, got {v:?}")))
}
