//! Query strings the way Airflow reads them: repeated keys for lists (`state=a&state=b`),
//! `limit`/`offset` pagination (default 50, at most 100 like Airflow's
//! `maximum_page_limit`), `order_by` with a leading `-` for descending, and SQL-LIKE
//! `*_pattern` filters.

use std::str::FromStr;

use axum::extract::RawQuery;
use chrono::{DateTime, Utc};

use crate::problem::Problem;

/// The page size when `limit` is absent (Airflow's OpenAPI default).
pub const DEFAULT_LIMIT: usize = 50;
/// The largest page returned (Airflow's `[api] maximum_page_limit` default); larger limits
/// are clamped, as Airflow does.
pub const MAX_LIMIT: usize = 100;

/// The parsed query string of one request (its keys were checked by the guard).
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl From<RawQuery> for Params {
    fn from(RawQuery(q): RawQuery) -> Params {
        Params::parse(q.as_deref().unwrap_or(""))
    }
}

impl Params {
    pub fn parse(query: &str) -> Params {
        Params {
            pairs: form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// The last value of `name`.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`; comma-separated values are split too.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// `name` parsed as `T`; a value that does not parse is a 400 naming the parameter.
    pub fn parsed<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, Problem> {
        self.one(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    Problem::bad_request(format!(
                        "query parameter `{name}` must be {expected}, got {v:?}"
                    ))
                })
            })
            .transpose()
    }

    /// Every value of `name` parsed as `T`.
    pub fn parsed_all<T: FromStr>(&self, name: &str, expected: &str) -> Result<Vec<T>, Problem>
    where
        T::Err: std::fmt::Display,
    {
        self.all(name)
            .into_iter()
            .map(|v| {
                v.parse().map_err(|e| {
                    Problem::bad_request(format!(
                        "query parameter `{name}` must be {expected}: {e}"
                    ))
                })
            })
            .collect()
    }

    /// A boolean (`true`/`false`, as Airflow spells them).
    pub fn flag(&self, name: &str) -> Result<Option<bool>, Problem> {
        self.parsed(name, "true or false")
    }

    pub fn page(&self) -> Result<Page, Problem> {
        let limit = self
            .parsed::<usize>("limit", "a non-negative integer")?
            .unwrap_or(DEFAULT_LIMIT)
            .min(MAX_LIMIT);
        let offset = self
            .parsed::<usize>("offset", "a non-negative integer")?
            .unwrap_or(0);
        Ok(Page { limit, offset })
    }

    /// `order_by` as (field, descending), checked against the fields a listing sorts by.
    pub fn order_by(&self, allowed: &[&str]) -> Result<Option<(String, bool)>, Problem> {
        let Some(raw) = self.one("order_by") else {
            return Ok(None);
        };
        order_field(raw, allowed).map(Some)
    }
}

/// `raw` (`field` or `-field`) checked against `allowed`.
pub fn order_field(raw: &str, allowed: &[&str]) -> Result<(String, bool), Problem> {
    let (field, desc) = raw.strip_prefix('-').map_or((raw, false), |f| (f, true));
    if allowed.contains(&field) {
        Ok((field.to_string(), desc))
    } else {
        Err(Problem::bad_request(format!(
            "cannot order by {field:?}; order_by accepts {} (prefix with - for descending)",
            allowed.join(", ")
        )))
    }
}

/// Airflow's `<field>_gte/_gt/_lte/_lt` bounds on one timestamp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub gte: Option<DateTime<Utc>>,
    pub gt: Option<DateTime<Utc>>,
    pub lte: Option<DateTime<Utc>>,
    pub lt: Option<DateTime<Utc>>,
}

impl Range {
    /// The bounds on `field` in the query string.
    pub fn from_params(q: &Params, field: &str) -> Result<Range, Problem> {
        let bound = |suffix: &str| {
            q.parsed::<DateTime<Utc>>(
                &format!("{field}_{suffix}"),
                "an RFC 3339 timestamp such as 2024-01-31T00:00:00Z (encode `+` as %2B)",
            )
        };
        Ok(Range {
            gte: bound("gte")?,
            gt: bound("gt")?,
            lte: bound("lte")?,
            lt: bound("lt")?,
        })
    }

    /// Whether `t` is within the bounds; a missing timestamp is outside any bound.
    pub fn contains(&self, t: Option<DateTime<Utc>>) -> bool {
        if *self == Range::default() {
            return true;
        }
        t.is_some_and(|t| {
            self.gte.is_none_or(|b| t >= b)
                && self.gt.is_none_or(|b| t > b)
                && self.lte.is_none_or(|b| t <= b)
                && self.lt.is_none_or(|b| t < b)
        })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    pub offset: usize,
}

impl Page {
    pub fn new(limit: usize, offset: usize) -> Page {
        Page {
            limit: limit.min(MAX_LIMIT),
            offset,
        }
    }

    /// The page's slice of `items`.
    pub fn apply<T>(self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect()
    }
}

/// Airflow's `*_pattern` filters: a case-insensitive SQL `LIKE` of `%pattern%`, where `%`
/// matches any run of characters and `_` any one character.
pub fn like(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = format!("%{}%", pattern.to_lowercase()).chars().collect();
    let v: Vec<char> = value.to_lowercase().chars().collect();
    // Classic wildcard matching with backtracking over the last `%`.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_airflow_patterns() {
        for (p, v, m) in [
            ("bench", "bench_40", true),
            ("BENCH", "bench_40", true),
            ("b%_40", "bench_40", true),
            ("x", "bench_40", false),
            ("be_ch", "bench", true),
            ("", "anything", true),
        ] {
            assert_eq!(like(p, v), m, "{p} ~ {v}");
        }
    }

    #[test]
    fn ranges_bound_timestamps_and_exclude_missing_ones() {
        let q = Params::parse(
            "start_date_gte=2024-01-01T00:00:00Z&start_date_lt=2024-02-01T00:00:00%2B00:00",
        );
        let r = Range::from_params(&q, "start_date").unwrap();
        let at = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        assert!(r.contains(at("2024-01-15T00:00:00Z")));
        assert!(!r.contains(at("2024-02-01T00:00:00Z")));
        assert!(!r.contains(None));
        assert!(Range::default().contains(None));
        assert!(
            Range::from_params(&Params::parse("start_date_gte=yesterday"), "start_date").is_err()
        );
    }

    #[test]
    fn repeated_and_comma_separated_values_are_lists() {
        let q = Params::parse("state=failed&state=success,running&limit=500&offset=2");
        assert_eq!(q.all("state"), ["failed", "success", "running"]);
        assert_eq!(q.page().unwrap(), Page::new(100, 2));
        assert!(Params::parse("limit=-1").page().is_err());
        assert_eq!(
            order_field("-dag_id", &["dag_id"]).unwrap(),
            ("dag_id".into(), true)
        );
        assert!(order_field("nope", &["dag_id"]).is_err());
    }
}
