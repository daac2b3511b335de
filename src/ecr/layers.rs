//! Layer operations: `BatchCheckLayerAvailability`, `GetDownloadUrlForLayer`,
//! `InitiateLayerUpload`, `UploadLayerPart`, `CompleteLayerUpload`.

use serde_json::Value;

use super::{Call, EcrError};

fn not_yet(operation: &str) -> EcrError {
    EcrError::unknown_operation(operation)
}

pub async fn check_availability(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("BatchCheckLayerAvailability"))
}

pub async fn download_url(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("GetDownloadUrlForLayer"))
}

pub async fn initiate_upload(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("InitiateLayerUpload"))
}

pub async fn upload_part(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("UploadLayerPart"))
}

pub async fn complete_upload(_: &Call<'_>, _: Value) -> Result<Value, EcrError> {
    Err(not_yet("CompleteLayerUpload"))
}
