//! Shared test helpers.
#![allow(dead_code)]
pub(crate) use gatewise_test_support::mint;
