//! Driving adapter: the Airflow-compatible /api/v2, the /ui endpoints, auth, the agent API and UI assets (axum).
//!
//! Skeleton only: nothing is implemented yet; issues #6, #7 and #9 fill this crate.
