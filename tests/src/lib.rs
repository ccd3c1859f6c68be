//! Namespace helpers for integration tests.
