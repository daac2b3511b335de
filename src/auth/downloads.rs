//! Download tokens: what makes a `GetDownloadUrlForLayer` URL on Wharf itself work without
//! other credentials, as a presigned S3 URL does. Each names one blob of one repository
//! (`<repository>@<digest>`), is signed with the registry's key and lives a few minutes. Its
//! `download` use keeps it from standing in for a Bearer token or login password, so it grants
//! nothing on `/v2`. Part of `auth`; depends on its token signing only.

use std::time::Duration;

use super::token::{AccessEntry, TokenUse};
use super::{Auth, AuthError};
use crate::oci::{Digest, RepoName};

/// How long a download URL works, counted from `GetDownloadUrlForLayer`.
const DOWNLOAD_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// The `access` entry type naming the one blob a download token is for.
const BLOB: &str = "blob";
const PULL: &str = "pull";

impl Auth {
    /// A token that lets whoever holds it fetch `digest` from `repository` for
    /// [`DOWNLOAD_LIFETIME`]. `user`, who asked for it, is its subject.
    pub fn download_token(&self, user: &str, repository: &RepoName, digest: &Digest) -> String {
        let blob = AccessEntry {
            kind: BLOB.into(),
            name: format!("{repository}@{digest}"),
            actions: vec![PULL.into()],
        };
        self.sign(user, TokenUse::Download, DOWNLOAD_LIFETIME, vec![blob])
    }

    /// The blob a download token lets its holder fetch: `None` unless the token is this
    /// registry's, unexpired, and its user still exists (deleting a user revokes its URLs).
    pub async fn download_grant(
        &self,
        token: &str,
    ) -> Result<Option<(RepoName, Digest)>, AuthError> {
        let Some(claims) = self.verify(token, TokenUse::Download) else {
            return Ok(None);
        };
        let blob = match &claims.access[..] {
            [entry] if entry.kind == BLOB && entry.actions == [PULL] => entry.name.as_str(),
            _ => return Ok(None),
        };
        let Some((repository, digest)) = blob.split_once('@') else {
            return Ok(None);
        };
        let (Ok(repository), Ok(digest)) = (repository.parse(), digest.parse()) else {
            return Ok(None);
        };
        if self.store.get_user(&claims.sub).await?.is_none() {
            return Ok(None);
        }
        Ok(Some((repository, digest)))
    }
}
