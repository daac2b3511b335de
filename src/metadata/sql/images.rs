//! [`ImageStore`] over SQL: images (manifests with their tags) as ECR lists and describes
//! them. Part of `metadata::sql`.

use async_trait::async_trait;

use super::SqlStore;
use crate::metadata::ImageStore;

#[async_trait]
impl ImageStore for SqlStore {}
