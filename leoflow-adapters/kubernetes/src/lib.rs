//! The Kubernetes executor: every task attempt is one pod with a deterministic name, its
//! agent injected by an init container and its token in a per-attempt Secret owned by the
//! pod. State comes from one watch on the pods Leoflow manages; nothing polls. ADR 0006
//! records the design.

mod config;
mod executor;
mod pod;
mod status;

pub use config::{ClusterAccess, KubernetesConfig, SecurityConfig};
pub use executor::{ConnectError, KubernetesExecutor};
pub use pod::{pod_name, MANAGED_BY_SELECTOR};
