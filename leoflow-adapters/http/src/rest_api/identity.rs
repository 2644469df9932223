//! User identity: the HS256 user tokens `POST /auth/token` mints (audience
//! `leoflow-user`, so agent tokens never pass here nor user tokens on the agent API), the
//! roles they carry, and the principal a checked request acts as.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::token::{Error, ISSUER, MIN_SECRET_BYTES};

/// The `aud` of user tokens.
pub const USER_AUDIENCE: &str = "leoflow-user";

/// Airflow's simple-auth-manager roles, weakest first: each role may do everything the
/// ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads DAGs, runs, task instances, logs, XComs, pools, the audit log.
    Viewer,
    /// Also triggers, clears, marks and deletes runs and task instances, pauses DAGs.
    User,
    /// Also manages variables, connections and DAG versions, reads the config.
    Op,
    /// Also manages users.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::User => "user",
            Role::Op => "op",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s.to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "user" => Ok(Role::User),
            "op" => Ok(Role::Op),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}; use admin, op, user or viewer"
            )),
        }
    }
}

/// What a user token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    pub iss: String,
    pub aud: String,
    /// The username.
    pub sub: String,
    pub role: Role,
    pub tenant: String,
    pub iat: i64,
    pub exp: i64,
}

/// Who a request acts as (put in the request's extensions by the guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    pub tenant: String,
}

/// Mints and checks user tokens.
#[derive(Clone)]
pub struct UserTokens {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    ttl: Duration,
}

impl fmt::Debug for UserTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserTokens")
            .field("keys", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl UserTokens {
    /// Tokens signed with `secret` (at least 16 bytes), valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Result<UserTokens, Error> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::WeakSecret);
        }
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        Ok(UserTokens {
            encoding: Arc::new(EncodingKey::from_secret(secret)),
            decoding: Arc::new(DecodingKey::from_secret(secret)),
            ttl,
        })
    }

    /// Claims for a user, issued now.
    pub fn claims_for(&self, username: &str, role: Role, tenant: &str) -> UserClaims {
        let iat = Utc::now().timestamp();
        UserClaims {
            iss: ISSUER.into(),
            aud: USER_AUDIENCE.into(),
            sub: username.into(),
            role,
            tenant: tenant.into(),
            iat,
            exp: iat.saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)),
        }
    }

    /// Signs arbitrary claims (tests forge expired and wrong-audience tokens with it).
    pub fn mint(&self, claims: &UserClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks signature (HS256 only), issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<UserClaims, Error> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[USER_AUDIENCE]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 5;
        jsonwebtoken::decode::<UserClaims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Error::Expired,
                ErrorKind::InvalidAudience => Error::Invalid {
                    reason: format!("it is not a user token (audience must be {USER_AUDIENCE:?})"),
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
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_what_they_may_do() {
        assert!(Role::Viewer < Role::User && Role::User < Role::Op && Role::Op < Role::Admin);
        assert_eq!("OP".parse::<Role>().unwrap(), Role::Op);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn user_tokens_check_audience_expiry_and_signature() {
        let t = UserTokens::new(b"0123456789abcdef0123", Duration::from_secs(60)).unwrap();
        let c = t.claims_for("ada", Role::User, "default");
        assert_eq!(t.verify(&t.mint(&c)).unwrap(), c);
        let mut expired = c.clone();
        expired.exp = expired.iat - 3600;
        assert_eq!(t.verify(&t.mint(&expired)), Err(Error::Expired));
        let mut agent = c.clone();
        agent.aud = crate::token::AUDIENCE.into();
        assert!(t.verify(&t.mint(&agent)).is_err());
        let other = UserTokens::new(b"another secret, 20b!", Duration::from_secs(60)).unwrap();
        assert!(t.verify(&other.mint(&c)).is_err());
    }
}
