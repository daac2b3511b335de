//! The soak's operations, as one client runs them in a loop: push an image (`soak_push`),
//! pull it back (manifest by tag and by digest, every blob with its sha256 checked), HEAD its
//! blobs, list tags, page through the catalog, delete a manifest and see it gone, re-tag.
//! Each client keeps what it pushed, so every read has an exact expectation. Repositories
//! are shared between clients; tags are each client's own.

use std::sync::Arc;
use std::time::Instant;

use reqwest::{Method, StatusCode};

use super::monitor::Monitor;
use super::soak::{Answer, Body, Client};
use crate::common::{OCI_MANIFEST, sha256};

/// Images a client keeps track of; older ones are deleted.
const KEEP: usize = 12;

pub(super) struct Image {
    pub(super) repo: String,
    pub(super) tags: Vec<String>,
    pub(super) digest: String,
    pub(super) manifest: Vec<u8>,
    /// Digest and size of the config and every layer.
    pub(super) blobs: Vec<(String, u64)>,
}

pub struct Worker {
    pub(super) client: Client,
    /// Layers shared by every client.
    pub(super) bases: Arc<Vec<Vec<u8>>>,
    pub(super) rng: fastrand::Rng,
    pub(super) id: u64,
    pub(super) pushed: u64,
    pub(super) images: Vec<Image>,
    /// Tags this client deleted (with their manifest) and never reused.
    gone: Vec<(String, String)>,
    /// Repositories this client pushed to.
    pub(super) repos: Vec<String>,
}

impl Worker {
    pub fn new(client: Client, id: u64, bases: Arc<Vec<Vec<u8>>>) -> Worker {
        Worker {
            bases,
            rng: fastrand::Rng::with_seed(client.seed),
            client,
            id,
            pushed: 0,
            images: Vec::new(),
            gone: Vec::new(),
            repos: Vec::new(),
        }
    }

    pub async fn run(mut self, deadline: Instant, monitor: &Monitor) {
        self.client.op = "ping";
        self.client.ping().await;
        while Instant::now() < deadline && monitor.alive() {
            let draw = self.rng.u32(..100);
            let op = match draw {
                _ if self.images.is_empty() => "push",
                0..35 => "push",
                35..60 => "pull",
                60..70 => "head_blobs",
                70..78 => "list_tags",
                78..83 => "catalog",
                83..90 => "delete",
                _ => "retag",
            };
            self.client.op = op;
            match op {
                "push" => self.push().await,
                "pull" => self.pull().await,
                "head_blobs" => self.head_blobs().await,
                "list_tags" => self.list_tags().await,
                "catalog" => self.catalog().await,
                "delete" => self.delete().await,
                _ => self.retag().await,
            };
            self.client.report.case(op);
            if self.images.len() > KEEP {
                self.client.op = "delete";
                self.delete_at(0).await;
            }
        }
    }

    pub(super) fn expect(&self, answer: &Answer, wanted: StatusCode, request: &str) -> bool {
        if answer.status == wanted {
            return true;
        }
        let signature = format!(
            "{} {}, wanted {}",
            answer.status.as_u16(),
            answer.code(),
            wanted.as_u16()
        );
        let problem = super::preview(&answer.body, 300);
        self.client
            .finding::<()>("unexpected status", &signature, request, &problem);
        false
    }

    pub(super) fn corrupt(&self, what: &str, request: &str, problem: String) {
        self.client
            .finding::<()>("corrupt read", what, request, &problem);
    }

    fn pick(&mut self) -> Option<usize> {
        (!self.images.is_empty()).then(|| self.rng.usize(..self.images.len()))
    }

    /// GETs a manifest and checks it is the image's, byte for byte.
    async fn get_manifest(&mut self, i: usize, reference: &str) {
        let image = &self.images[i];
        let path = format!("/v2/{}/manifests/{reference}", image.repo);
        let (manifest, digest) = (image.manifest.clone(), image.digest.clone());
        let headers = [("accept", OCI_MANIFEST.to_string())];
        let Some(answer) = self
            .client
            .send(Method::GET, &path, &headers, Body::Empty)
            .await
        else {
            return;
        };
        if self.expect(&answer, StatusCode::OK, &format!("GET {path}"))
            && (answer.body != manifest || answer.header("docker-content-digest") != digest)
        {
            let problem = format!(
                "{} bytes with digest {:?}; pushed {} bytes, {digest}",
                answer.body.len(),
                answer.header("docker-content-digest"),
                manifest.len()
            );
            self.corrupt(
                "manifest read back differs",
                &format!("GET {path}"),
                problem,
            );
        }
    }

    async fn pull(&mut self) {
        let Some(i) = self.pick() else { return };
        let tag = self.images[i].tags[self.rng.usize(..self.images[i].tags.len())].clone();
        let digest = self.images[i].digest.clone();
        self.get_manifest(i, &tag).await;
        self.get_manifest(i, &digest).await;
        for (digest, size) in self.images[i].blobs.clone() {
            let path = format!("/v2/{}/blobs/{digest}", self.images[i].repo);
            let Some(answer) = self.client.send(Method::GET, &path, &[], Body::Empty).await else {
                return;
            };
            if self.expect(&answer, StatusCode::OK, &format!("GET {path}"))
                && (sha256(&answer.body) != digest || answer.body.len() as u64 != size)
            {
                let problem = format!(
                    "{} bytes hashing to {}; pushed {size} bytes",
                    answer.body.len(),
                    sha256(&answer.body)
                );
                self.corrupt("blob read back differs", &format!("GET {path}"), problem);
            }
        }
    }

    async fn head_blobs(&mut self) {
        let Some(i) = self.pick() else { return };
        for (digest, size) in self.images[i].blobs.clone() {
            let path = format!("/v2/{}/blobs/{digest}", self.images[i].repo);
            let Some(answer) = self
                .client
                .send(Method::HEAD, &path, &[], Body::Empty)
                .await
            else {
                return;
            };
            let length = answer.header("content-length").to_string();
            let said = answer.header("docker-content-digest").to_string();
            if self.expect(&answer, StatusCode::OK, &format!("HEAD {path}"))
                && (length != size.to_string() || said != digest)
            {
                self.corrupt(
                    "HEAD disagrees with the blob",
                    &format!("HEAD {path}"),
                    format!("Content-Length {length}, digest {said}; pushed {size} bytes"),
                );
            }
        }
    }

    /// Every page of a listing, following `Link`: the entries of `key`, or `None` when a page
    /// failed (a finding) or there were more than 200 pages.
    async fn pages(&mut self, first: String, key: &str) -> Option<Vec<String>> {
        let (mut path, mut all) = (Some(first), Vec::new());
        for _ in 0..200 {
            let Some(current) = path.take() else { break };
            let answer = self
                .client
                .send(Method::GET, &current, &[], Body::Empty)
                .await?;
            self.expect(&answer, StatusCode::OK, &format!("GET {current}"))
                .then_some(())?;
            let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            all.extend(
                body[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string)),
            );
            let link = answer.header("link");
            path = link
                .strip_prefix('<')
                .and_then(|l| l.split_once('>'))
                .map(|(url, _)| url.to_string());
        }
        // Too many pages to follow: nothing to compare.
        path.is_none().then_some(all)
    }

    async fn list_tags(&mut self) {
        let Some(i) = self.pick() else { return };
        let repo = self.images[i].repo.clone();
        let n = self.rng.usize(5..100);
        let first = format!("/v2/{repo}/tags/list?n={n}");
        let Some(tags) = self.pages(first.clone(), "tags").await else {
            return;
        };
        let sorted = tags.windows(2).all(|w| w[0] < w[1]);
        let live: Vec<&String> = self
            .images
            .iter()
            .filter(|im| im.repo == repo)
            .flat_map(|im| &im.tags)
            .collect();
        let missing: Vec<&&String> = live.iter().filter(|t| !tags.contains(t)).collect();
        let stale: Vec<&String> = self
            .gone
            .iter()
            .filter(|(r, _)| *r == repo)
            .map(|(_, t)| t)
            .filter(|t| tags.contains(t))
            .collect();
        if !sorted || !missing.is_empty() || !stale.is_empty() {
            let problem = format!(
                "sorted {sorted}, missing live tags {missing:?}, deleted tags still listed {stale:?}"
            );
            self.corrupt(
                "tag list disagrees with pushes",
                &format!("GET {first} (all pages)"),
                problem,
            );
        }
    }

    async fn catalog(&mut self) {
        let n = self.rng.usize(1..50);
        let first = format!("/v2/_catalog?n={n}");
        let Some(repos) = self.pages(first.clone(), "repositories").await else {
            return;
        };
        let sorted = repos.windows(2).all(|w| w[0] < w[1]);
        let missing: Vec<&String> = self.repos.iter().filter(|r| !repos.contains(r)).collect();
        if !sorted || !missing.is_empty() {
            let problem = format!("sorted {sorted}, missing repositories {missing:?}");
            self.corrupt(
                "catalog disagrees with pushes",
                &format!("GET {first} (all pages)"),
                problem,
            );
        }
    }

    async fn delete(&mut self) {
        if let Some(i) = self.pick() {
            self.delete_at(i).await;
        }
    }

    /// Deletes image `i` by digest; it and every tag of it must then be gone.
    async fn delete_at(&mut self, i: usize) {
        let image = self.images.remove(i);
        let path = format!("/v2/{}/manifests/{}", image.repo, image.digest);
        let Some(answer) = self
            .client
            .send(Method::DELETE, &path, &[], Body::Empty)
            .await
        else {
            return;
        };
        if !self.expect(&answer, StatusCode::ACCEPTED, &format!("DELETE {path}")) {
            return;
        }
        for reference in std::iter::once(&image.digest).chain(&image.tags) {
            let path = format!("/v2/{}/manifests/{reference}", image.repo);
            let Some(answer) = self.client.send(Method::GET, &path, &[], Body::Empty).await else {
                return;
            };
            if self.expect(
                &answer,
                StatusCode::NOT_FOUND,
                &format!("GET {path} after its DELETE"),
            ) && answer.code() != "MANIFEST_UNKNOWN"
            {
                self.client.finding::<()>(
                    "unexpected status",
                    &format!("404 {}, wanted MANIFEST_UNKNOWN", answer.code()),
                    &format!("GET {path}"),
                    "",
                );
            }
        }
        self.gone
            .extend(image.tags.iter().map(|t| (image.repo.clone(), t.clone())));
    }

    /// Tags an image again, or moves one of another image's tags to it, and reads it back.
    async fn retag(&mut self) {
        let Some(i) = self.pick() else { return };
        let repo = self.images[i].repo.clone();
        let donor = (0..self.images.len())
            .find(|&j| j != i && self.images[j].repo == repo && self.images[j].tags.len() > 1);
        let tag = match donor {
            Some(j) if self.rng.bool() => {
                let k = self.rng.usize(..self.images[j].tags.len());
                self.images[j].tags.remove(k)
            }
            _ => {
                self.pushed += 1;
                format!("w{}-{}-again", self.id, self.pushed)
            }
        };
        let path = format!("/v2/{repo}/manifests/{tag}");
        let headers = [("content-type", OCI_MANIFEST.to_string())];
        let manifest = self.images[i].manifest.clone();
        let Some(answer) = self
            .client
            .send(Method::PUT, &path, &headers, Body::Bytes(manifest))
            .await
        else {
            return;
        };
        if self.expect(&answer, StatusCode::CREATED, &format!("PUT {path}")) {
            self.images[i].tags.push(tag.clone());
            self.get_manifest(i, &tag).await;
        }
    }
}
