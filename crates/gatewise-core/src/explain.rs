//! Placeholder; replaced by the explain module.
use crate::finding::{Check, Finding};
/// Every check this module can emit.
pub const CHECKS: &[&Check] = &[];
/// One recognised client library / message family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognition {
    /// Library.
    pub library: &'static str,
    /// Pattern.
    pub pattern: &'static str,
}
/// The result of explaining a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Recognised.
    pub recognised: Vec<Recognition>,
    /// Findings.
    pub findings: Vec<Finding>,
}
/// Explains a message printed by an OAuth client library.
pub fn explain(_message: &str) -> Explanation {
    Explanation {
        recognised: Vec::new(),
        findings: Vec::new(),
    }
}
