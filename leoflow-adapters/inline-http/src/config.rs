//! How the inline HTTP executor is bounded.

use std::time::Duration;

/// Limits of the inline HTTP executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineHttpConfig {
    /// Calls in flight at once; more attempts wait for a slot.
    pub max_concurrency: usize,
    /// No call lasts longer, whatever the task asks for.
    pub max_duration: Duration,
    /// A larger response body fails the attempt.
    pub max_response_bytes: usize,
}

impl Default for InlineHttpConfig {
    fn default() -> Self {
        InlineHttpConfig {
            max_concurrency: 32,
            max_duration: Duration::from_secs(300),
            max_response_bytes: leoflow_ports::http_call::MAX_RESPONSE_BYTES,
        }
    }
}

/// A bad `LEOFLOW_INLINE_HTTP_MAX_DURATION`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("LEOFLOW_INLINE_HTTP_MAX_DURATION={value:?} is not a number of seconds between 1 and 86400; set it to e.g. 300")]
pub struct ConfigError {
    pub value: String,
}

impl InlineHttpConfig {
    /// The defaults, with `max_duration` from `LEOFLOW_INLINE_HTTP_MAX_DURATION` (seconds)
    /// when `value` is given.
    pub fn with_max_duration(value: Option<&str>) -> Result<InlineHttpConfig, ConfigError> {
        let mut config = InlineHttpConfig::default();
        if let Some(v) = value {
            let secs: u64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s| (1..=86_400).contains(s))
                .ok_or_else(|| ConfigError { value: v.into() })?;
            config.max_duration = Duration::from_secs(secs);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::InlineHttpConfig;

    #[test]
    fn the_max_duration_comes_from_its_variable_or_is_refused_clearly() {
        assert_eq!(
            InlineHttpConfig::with_max_duration(None).map(|c| c.max_duration),
            Ok(Duration::from_secs(300))
        );
        assert_eq!(
            InlineHttpConfig::with_max_duration(Some("30")).map(|c| c.max_duration),
            Ok(Duration::from_secs(30))
        );
        for bad in ["0", "-1", "5m", ""] {
            let err = InlineHttpConfig::with_max_duration(Some(bad)).unwrap_err();
            assert!(err.to_string().contains("LEOFLOW_INLINE_HTTP_MAX_DURATION"));
        }
    }
}
