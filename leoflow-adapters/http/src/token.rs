//! Agent tokens: HS256 JWTs minted per attempt (`AgentTokens`), scoped by their claims to
//! exactly one (dag, run, task, map index, try) and expiring at the attempt's timeout plus
//! a grace. `AgentTokens` is also the `AttemptCredentials` executors hand to their agents.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use leoflow_ports::executor::{Attempt, AttemptCredentials};
use leoflow_ports::run::{AttemptId, TaskKey};
use serde::{Deserialize, Serialize};

/// The `iss` of every agent token.
pub const ISSUER: &str = "leoflow";
/// The `aud` of agent tokens; user tokens use another audience, so one never passes for
/// the other.
pub const AUDIENCE: &str = "leoflow-agent";
/// How long past its timeout an attempt's token stays valid (reporting, retried calls).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10 * 60);
/// The lifetime of a token for an attempt without a timeout.
pub const NO_TIMEOUT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The shortest secret accepted.
pub const MIN_SECRET_BYTES: usize = 16;

/// What an agent token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentClaims {
    pub iss: String,
    pub aud: String,
    /// The attempt id as text (`dag/run/task[map]#try`), for logs; the fields below are
    /// what the API reads.
    pub sub: String,
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub map_index: i32,
    pub try_number: u32,
    /// Seconds since the Unix epoch.
    pub iat: i64,
    pub exp: i64,
}

impl AgentClaims {
    /// Claims for `attempt`, issued now and valid for `lifetime`.
    pub fn for_attempt(attempt: &AttemptId, lifetime: Duration) -> AgentClaims {
        let iat = Utc::now().timestamp();
        let life = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        AgentClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: attempt.to_string(),
            dag_id: attempt.task.dag_id.clone(),
            run_id: attempt.task.run_id.clone(),
            task_id: attempt.task.task_id.clone(),
            map_index: attempt.task.map_index,
            try_number: attempt.try_number,
            iat,
            exp: iat.saturating_add(life),
        }
    }

    /// The attempt these claims authorise.
    pub fn attempt(&self) -> AttemptId {
        AttemptId {
            task: TaskKey {
                dag_id: self.dag_id.clone(),
                run_id: self.run_id.clone(),
                task_id: self.task_id.clone(),
                map_index: self.map_index,
            },
            try_number: self.try_number,
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("the agent token has expired")]
    Expired,
    #[error("invalid agent token: {reason}")]
    Invalid { reason: String },
    #[error("the agent token secret must be at least {MIN_SECRET_BYTES} bytes")]
    WeakSecret,
}

/// Mints and checks agent tokens, and tells agents where the API is.
#[derive(Clone)]
pub struct AgentTokens {
    keys: Arc<Keys>,
    issuer: String,
    grace: Duration,
    agent_url: String,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for AgentTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentTokens")
            .field("keys", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("grace", &self.grace)
            .field("agent_url", &self.agent_url)
            .finish()
    }
}

impl AgentTokens {
    /// Tokens signed with `secret` (at least [`MIN_SECRET_BYTES`]; use 32 random bytes),
    /// for agents that reach the API at `agent_url`.
    pub fn new(secret: &[u8], agent_url: impl Into<String>) -> Result<AgentTokens, Error> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::WeakSecret);
        }
        // jsonwebtoken picks its crypto backend from its crate features; installing ours
        // explicitly keeps it working if another crate in a build enables a second one.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        Ok(AgentTokens {
            keys: Arc::new(Keys {
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
            }),
            issuer: ISSUER.into(),
            grace: DEFAULT_GRACE,
            agent_url: agent_url.into().trim_end_matches('/').to_string(),
        })
    }

    /// How long past its timeout a token stays valid.
    pub fn with_grace(mut self, grace: Duration) -> AgentTokens {
        self.grace = grace;
        self
    }

    /// A token's lifetime for an attempt with this timeout.
    pub fn lifetime(&self, timeout: Option<Duration>) -> Duration {
        timeout.map_or(NO_TIMEOUT_LIFETIME, |t| t.saturating_add(self.grace))
    }

    /// Signs arbitrary claims (tests use this to forge wrong audiences and expired tokens).
    pub fn mint(&self, claims: &AgentClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.keys.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks signature (HS256 only), issuer, audience and expiry, and returns the claims.
    pub fn verify(&self, token: &str) -> Result<AgentClaims, Error> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[AUDIENCE]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 5;
        let data = jsonwebtoken::decode::<AgentClaims>(token, &self.keys.decoding, &v).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => Error::Expired,
                ErrorKind::InvalidAudience => Error::Invalid {
                    reason: format!(
                        "it is not meant for the agent API (audience must be {AUDIENCE:?})"
                    ),
                },
                ErrorKind::InvalidIssuer => Error::Invalid {
                    reason: "unknown issuer".into(),
                },
                ErrorKind::InvalidSignature => Error::Invalid {
                    reason: "bad signature".into(),
                },
                ErrorKind::InvalidAlgorithm => Error::Invalid {
                    reason: "only HS256 is accepted".into(),
                },
                _ => Error::Invalid {
                    reason: "malformed token".into(),
                },
            },
        )?;
        let claims = data.claims;
        if claims.sub != claims.attempt().to_string() {
            return Err(Error::Invalid {
                reason: "its subject does not match its attempt claims".into(),
            });
        }
        Ok(claims)
    }
}

impl AttemptCredentials for AgentTokens {
    fn token_for(&self, attempt: &Attempt) -> String {
        let mut claims = AgentClaims::for_attempt(&attempt.id, self.lifetime(attempt.timeout));
        claims.iss.clone_from(&self.issuer);
        self.mint(&claims)
    }

    fn agent_url(&self) -> String {
        self.agent_url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leoflow_ports::run::RunKey;

    fn attempt() -> AttemptId {
        AttemptId {
            task: TaskKey::new(&RunKey::new("d", "r"), "t", 2),
            try_number: 3,
        }
    }

    fn tokens() -> AgentTokens {
        AgentTokens::new(b"0123456789abcdef0123456789abcdef", "http://127.0.0.1:1/").unwrap()
    }

    #[test]
    fn a_minted_token_verifies_to_its_attempt() {
        let t = tokens();
        let token = t.mint(&AgentClaims::for_attempt(
            &attempt(),
            Duration::from_secs(60),
        ));
        let claims = t.verify(&token).unwrap();
        assert_eq!(claims.attempt(), attempt());
        assert_eq!(claims.sub, "d/r/t[2]#3");
        assert_eq!(t.agent_url(), "http://127.0.0.1:1");
    }

    #[test]
    fn expired_wrong_audience_and_foreign_secret_are_refused() {
        let t = tokens();
        let mut claims = AgentClaims::for_attempt(&attempt(), Duration::from_secs(60));
        claims.exp = claims.iat - 3600;
        assert_eq!(t.verify(&t.mint(&claims)), Err(Error::Expired));

        let mut claims = AgentClaims::for_attempt(&attempt(), Duration::from_secs(60));
        claims.aud = "leoflow-user".into();
        assert!(
            matches!(t.verify(&t.mint(&claims)), Err(Error::Invalid { reason }) if reason.contains("audience"))
        );

        let other = AgentTokens::new(b"another secret of 32 bytes......", "x").unwrap();
        let forged = other.mint(&AgentClaims::for_attempt(
            &attempt(),
            Duration::from_secs(60),
        ));
        assert!(
            matches!(t.verify(&forged), Err(Error::Invalid { reason }) if reason.contains("signature"))
        );

        let mut claims = AgentClaims::for_attempt(&attempt(), Duration::from_secs(60));
        claims.try_number = 4;
        assert!(
            t.verify(&t.mint(&claims)).is_err(),
            "sub must match the claims"
        );
        assert!(t.verify("not.a.jwt").is_err());
    }

    #[test]
    fn lifetime_is_timeout_plus_grace_or_a_day() {
        let t = tokens().with_grace(Duration::from_secs(30));
        assert_eq!(t.lifetime(None), NO_TIMEOUT_LIFETIME);
        assert_eq!(
            t.lifetime(Some(Duration::from_secs(60))),
            Duration::from_secs(90)
        );
        assert_eq!(
            AgentTokens::new(b"short", "x").unwrap_err(),
            Error::WeakSecret
        );
    }
}
