//! The leoflow-server binary of the Pro edition, its Dockerfile and Helm chart.
//!
//! Skeleton only: nothing is implemented yet; issue #11 (Pro edition) fills this crate.
