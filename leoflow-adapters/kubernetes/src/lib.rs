//! Executor that runs each task attempt as one Kubernetes pod, driven by a pod watch.
//!
//! Skeleton only: nothing is implemented yet; issue #10 (Kubernetes executor) fills this crate.
