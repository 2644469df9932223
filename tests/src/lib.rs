//! Cross-crate end-to-end tests and benchmarks; the test files live in `tests/`.
