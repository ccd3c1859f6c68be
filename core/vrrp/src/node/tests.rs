//! Tests of the node rules.
