//! Address resolution for the agent's HTTP calls. ureq's default resolver starts a thread
//! for every request when a timeout is set (so that a slow lookup can be abandoned), and it
//! resolves again even when a pooled connection is reused. An attempt talks to one control
//! plane a handful of times, so an IP literal is used as it is, and a host name is looked
//! up once and remembered for the life of the process.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Remembers the addresses of the last host it resolved.
#[derive(Debug, Default)]
pub struct RememberingResolver {
    lookup: DefaultResolver,
    last: Mutex<Option<(String, ResolvedSocketAddrs)>>,
}

impl Resolver for RememberingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(authority) = uri.authority() else {
            return self.lookup.resolve(uri, config, timeout);
        };
        let https = uri.scheme_str() == Some("https");
        let key = format!("{}://{authority}", if https { "https" } else { "http" });
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, addrs)) = &*last {
            if *known == key {
                return Ok(addrs.clone());
            }
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addrs = match host.parse::<IpAddr>() {
            Ok(ip) => {
                let mut addrs = self.empty();
                addrs.push(SocketAddr::new(ip, port));
                addrs
            }
            Err(_) => self.lookup.resolve(uri, config, timeout)?,
        };
        *last = Some((key, addrs.clone()));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::Timeout;

    fn resolve(r: &RememberingResolver, url: &str) -> Vec<SocketAddr> {
        let uri: Uri = url.parse().expect("a valid test URL");
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::NotHappening,
            reason: Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        r.resolve(&uri, &Config::default(), timeout)
            .expect("resolvable")
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn ip_literals_resolve_to_themselves_with_the_scheme_default_port() {
        let r = RememberingResolver::default();
        assert_eq!(
            resolve(&r, "http://127.0.0.1:58500/agent/v1/start"),
            vec!["127.0.0.1:58500".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve(&r, "https://[::1]/x"),
            vec!["[::1]:443".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve(&r, "http://10.0.0.7/x"),
            vec!["10.0.0.7:80".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn a_host_name_is_looked_up_and_remembered() {
        let r = RememberingResolver::default();
        let first = resolve(&r, "http://localhost:9/a");
        assert!(!first.is_empty());
        assert!(first.iter().all(|a| a.port() == 9 && a.ip().is_loopback()));
        let remembered = r.last.lock().unwrap().clone().map(|(k, _)| k);
        assert_eq!(remembered.as_deref(), Some("http://localhost:9"));
        assert_eq!(resolve(&r, "http://localhost:9/b"), first);
    }
}
