//! The soak's push: an image of 1–3 layers (random blobs of 1 B to 2 MiB sent monolithic,
//! with the PUT, in 2–4 PATCHes, or streamed; now and then a base layer every client pushes,
//! checked with HEAD and mounted from another repository as Docker does), a config, an OCI
//! manifest and a tag. Part of the soak's `Worker`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::soak::Body;
use super::soak_ops::{Image, Worker};
use crate::common::{LAYER, OCI_MANIFEST, sha256};

const REPOS: u64 = 8;
const MAX_BLOB: f64 = 2.0 * 1024.0 * 1024.0;

impl Worker {
    pub(super) fn repo(&mut self) -> String {
        let n = self.rng.u64(..REPOS);
        let tag = self.client.settings.tag();
        if n.is_multiple_of(2) {
            format!("stress/{tag}/soak/r{n}")
        } else {
            format!("stress/{tag}/soak/team{n}/app")
        }
    }

    /// Random bytes, of a size spread evenly over orders of magnitude from 1 B to 2 MiB.
    fn blob(&mut self) -> Vec<u8> {
        let size = MAX_BLOB.powf(self.rng.f64()).round().max(1.0) as usize;
        let mut data = vec![0; size];
        self.rng.fill(&mut data);
        data
    }

    async fn push_blob(&mut self, repo: &str, data: &[u8]) -> Option<()> {
        let digest = sha256(data);
        let uploads = format!("/v2/{repo}/blobs/uploads/");
        let kind = self.rng.u8(..4);
        if kind == 0 {
            let path = format!("{uploads}?digest={digest}");
            let answer = self
                .client
                .send(Method::POST, &path, &[], Body::Bytes(data.to_vec()))
                .await?;
            self.expect(&answer, StatusCode::CREATED, &format!("POST {path}"))
                .then_some(())?;
            return Some(());
        }
        let answer = self
            .client
            .send(Method::POST, &uploads, &[], Body::Empty)
            .await?;
        self.expect(&answer, StatusCode::ACCEPTED, &format!("POST {uploads}"))
            .then_some(())?;
        let mut location = answer.header("location").to_string();
        let mut last = data.to_vec();
        if kind == 2 {
            // 2–4 PATCHes with Content-Range (fewer for a blob of fewer bytes), then a PUT
            // without a body.
            let pieces = self.rng.usize(2..=4).min(data.len());
            let mut offset = 0;
            for i in 0..pieces {
                let end = offset + (data.len() - offset) / (pieces - i);
                if end == offset {
                    continue;
                }
                let range = format!("{offset}-{}", end - 1);
                let headers = [
                    ("content-range", range),
                    ("content-type", "application/octet-stream".into()),
                ];
                let body = Body::Bytes(data[offset..end].to_vec());
                let answer = self
                    .client
                    .send(Method::PATCH, &location, &headers, body)
                    .await?;
                self.expect(&answer, StatusCode::ACCEPTED, &format!("PATCH {location}"))
                    .then_some(())?;
                location = answer.header("location").to_string();
                offset = end;
            }
            last = data[offset..].to_vec();
        } else if kind == 3 {
            let chunks: Vec<Vec<u8>> = data.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
            let answer = self
                .client
                .send(Method::PATCH, &location, &[], Body::Stream(chunks))
                .await?;
            self.expect(
                &answer,
                StatusCode::ACCEPTED,
                &format!("PATCH {location} (streamed)"),
            )
            .then_some(())?;
            location = answer.header("location").to_string();
            last = Vec::new();
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let path = format!("{location}{separator}digest={digest}");
        let body = if last.is_empty() {
            Body::Empty
        } else {
            Body::Bytes(last)
        };
        let answer = self.client.send(Method::PUT, &path, &[], body).await?;
        self.expect(&answer, StatusCode::CREATED, &format!("PUT {path}"))
            .then_some(())
    }

    /// Pushes a layer other clients push too, as Docker does: skipped if the repository has
    /// it, else mounted from another repository, else uploaded.
    async fn push_shared(&mut self, repo: &str, data: &[u8]) -> Option<()> {
        let digest = sha256(data);
        let path = format!("/v2/{repo}/blobs/{digest}");
        let answer = self
            .client
            .send(Method::HEAD, &path, &[], Body::Empty)
            .await?;
        if answer.status == StatusCode::OK {
            return Some(());
        }
        self.expect(&answer, StatusCode::NOT_FOUND, &format!("HEAD {path}"))
            .then_some(())?;
        let from = self.repo();
        let mount = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}");
        let answer = self
            .client
            .send(Method::POST, &mount, &[], Body::Empty)
            .await?;
        match answer.status {
            StatusCode::CREATED => Some(()),
            StatusCode::ACCEPTED => {
                let location = answer.header("location").to_string();
                let separator = if location.contains('?') { '&' } else { '?' };
                let put = format!("{location}{separator}digest={digest}");
                let answer = self
                    .client
                    .send(Method::PUT, &put, &[], Body::Bytes(data.to_vec()))
                    .await?;
                self.expect(&answer, StatusCode::CREATED, &format!("PUT {put}"))
                    .then_some(())
            }
            _ => self
                .expect(&answer, StatusCode::CREATED, &format!("POST {mount}"))
                .then_some(()),
        }
    }

    pub(super) async fn push(&mut self) {
        let repo = self.repo();
        self.pushed += 1;
        let tag = format!("w{}-{}", self.id, self.pushed);
        let mut blobs = Vec::new();
        let config = json!({"architecture": "amd64", "os": "linux", "soak": [self.client.seed, self.pushed]});
        let config = serde_json::to_vec(&config).unwrap();
        let mut layers = Vec::new();
        for _ in 0..self.rng.usize(1..=3) {
            let shared = self.rng.u8(..10) < 3;
            let data = if shared {
                self.bases[self.rng.usize(..self.bases.len())].clone()
            } else {
                self.blob()
            };
            let pushed = if shared {
                self.push_shared(&repo, &data).await
            } else {
                self.push_blob(&repo, &data).await
            };
            if pushed.is_none() {
                return;
            }
            layers.push(json!({"mediaType": LAYER, "digest": sha256(&data), "size": data.len()}));
            blobs.push((sha256(&data), data.len() as u64));
        }
        if self.push_blob(&repo, &config).await.is_none() {
            return;
        }
        blobs.insert(0, (sha256(&config), config.len() as u64));
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(&config), "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        let path = format!("/v2/{repo}/manifests/{tag}");
        let headers = [("content-type", OCI_MANIFEST.to_string())];
        let Some(answer) = self
            .client
            .send(Method::PUT, &path, &headers, Body::Bytes(manifest.clone()))
            .await
        else {
            return;
        };
        if !self.expect(&answer, StatusCode::CREATED, &format!("PUT {path}")) {
            return;
        }
        let digest = sha256(&manifest);
        if answer.header("docker-content-digest") != digest {
            self.corrupt(
                "pushed manifest digest differs",
                &format!("PUT {path}"),
                format!(
                    "Docker-Content-Digest {:?}, manifest {digest}",
                    answer.header("docker-content-digest")
                ),
            );
        }
        if !self.repos.contains(&repo) {
            self.repos.push(repo.clone());
        }
        self.images.push(Image {
            repo,
            tags: vec![tag],
            digest,
            manifest,
            blobs,
        });
    }
}
