//! ECR lifecycle policies: the grammar, its validation, and which images a policy expires.
//!
//! [`LifecyclePolicy::parse`] takes the JSON text of `PutLifecyclePolicy` and refuses, with an
//! [`InvalidPolicy`] naming the rule and member at fault, anything Amazon ECR documents as
//! invalid; [`evaluate`] says which of a repository's images a policy expires, and by which
//! rule, as ECR's documented evaluation rules do.
//!
//! Pure: it may depend only on [`crate::metadata::Millis`], std, serde/serde_json, thiserror
//! and wildmatch. No I/O, no database, no HTTP: callers load the images and delete them.

mod evaluate;
mod policy;

pub use evaluate::{Candidate, Expiry, evaluate};
pub use policy::{Count, InvalidPolicy, LifecyclePolicy, Rule, Selection, TagSelection};
