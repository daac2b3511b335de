//! Image operations: `ListImages`, `DescribeImages`, `BatchGetImage`, `BatchDeleteImage`,
//! `PutImage`, `ListImageReferrers`.

use serde_json::Value;

use super::{Call, EcrError};

fn not_yet(operation: &str) -> EcrError {
    EcrError::unknown_operation(operation)
}

pub async fn list(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("ListImages"))
}

pub async fn describe(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("DescribeImages"))
}

pub async fn batch_get(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("BatchGetImage"))
}

pub async fn batch_delete(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("BatchDeleteImage"))
}

pub async fn put(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("PutImage"))
}

pub async fn list_referrers(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("ListImageReferrers"))
}
