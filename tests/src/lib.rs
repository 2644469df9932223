//! Cross-crate tests and benchmarks of Leoflow. The tests live in `tests/` (run by
//! `cargo test`), the benchmarks in `benches/` (run by `cargo bench -p leoflow-tests`).
