//! The `wharf vulndb` and `wharf scan` commands: importing OSV advisories, scanning an image
//! now and printing its findings, and scanning again what was scanned before. Progress shows
//! on standard error when that is a terminal; answers and summaries go to standard output.
//! Depends on `registry` and `config` only.

use serde_json::json;

use crate::config::VulndbAction;
use crate::housekeeping::{end_progress, progress, rfc3339};
use crate::oci::{Digest, RepoName, Tag};
use crate::registry::{ImageRef, ImportSummary, Registry, ScanRun};

/// `wharf vulndb import PATH… [--rescan] | list`; `rescan_always` is the
/// `rescan_after_import` setting.
pub async fn vulndb(
    registry: &Registry,
    action: VulndbAction,
    rescan_always: bool,
) -> Result<(), String> {
    match action {
        VulndbAction::Import { paths, rescan } => {
            let shown = |summary: &ImportSummary| {
                progress(&format!(
                    "{} records read, {} advisories kept",
                    summary.records,
                    summary.advisories.values().sum::<u64>()
                ))
            };
            let summary = registry
                .import_advisories(paths, &shown)
                .await
                .map_err(|e| e.to_string())?;
            end_progress();
            for (source, count) in &summary.advisories {
                let noun = if *count == 1 {
                    "advisory"
                } else {
                    "advisories"
                };
                println!("{source}: {count} {noun} (replacing earlier imports)");
            }
            println!(
                "imported {} records: {} kept, {} withdrawn, {} about no distribution scanned",
                summary.records,
                summary.advisories.values().sum::<u64>(),
                summary.withdrawn,
                summary.unrelated
            );
            if rescan || rescan_always {
                rescan_all(registry).await?;
            } else if !summary.advisories.is_empty() {
                println!(
                    "findings of earlier scans are stale until `wharf scan --rescan-all` (or \
                     StartImageScan) scans their images again"
                );
            }
        }
        VulndbAction::List => {
            let sources = registry
                .advisory_sources()
                .await
                .map_err(|e| e.to_string())?;
            if sources.is_empty() {
                println!("(no advisories: `wharf vulndb import` osv.dev's zip files)");
            }
            for source in sources {
                println!(
                    "{}\t{} advisories\timported {}",
                    source.source,
                    source.advisories,
                    rfc3339(source.imported_at)
                );
            }
        }
    }
    Ok(())
}

/// `REPOSITORY:TAG` or `REPOSITORY@DIGEST`.
fn image_of(image: &str) -> Result<(RepoName, ImageRef), String> {
    let invalid = |e: String| format!("invalid image {image:?}: {e}");
    let (name, reference) = if let Some((name, digest)) = image.split_once('@') {
        let digest: Digest = digest.parse().map_err(|e| invalid(format!("{e}")))?;
        (name, ImageRef::Digest(digest))
    } else {
        let Some((name, tag)) = image.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) else {
            return Err(invalid(
                "name it REPOSITORY:TAG or REPOSITORY@DIGEST".into(),
            ));
        };
        let tag: Tag = tag.parse().map_err(|e| invalid(format!("{e}")))?;
        (name, ImageRef::Tag(tag))
    };
    let name: RepoName = name.parse().map_err(|e| invalid(format!("{e}")))?;
    Ok((name, reference))
}

/// `wharf scan IMAGE [--json]`: scans it and prints the findings.
pub async fn scan(registry: &Registry, image: &str, as_json: bool) -> Result<(), String> {
    let (name, reference) = image_of(image)?;
    let failed = |e: crate::registry::Error| format!("{image}: {e}");
    progress(&format!("scanning {image}…"));
    let digest = registry.scan_now(&name, &reference).await.map_err(failed)?;
    end_progress();
    let report = registry
        .image_scan(&name, &digest, true)
        .await
        .map_err(failed)?
        .ok_or_else(|| format!("{image}: the scan was not recorded"))?;
    if as_json {
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(crate::ecr::finding_shape)
            .collect();
        let output = json!({
            "repositoryName": name.as_str(),
            "imageId": { "imageDigest": digest },
            "imageScanStatus": { "status": report.status, "description": report.description },
            "imageScanFindings": {
                "findingSeverityCounts": report.severity_counts,
                "findings": findings,
            },
        });
        println!("{}", serde_json::to_string_pretty(&output).expect("JSON"));
        return Ok(());
    }
    println!("{name}@{digest}: {}", report.status);
    if report.status != "COMPLETE" {
        println!("{}", report.description);
        return Ok(());
    }
    let widths = [
        "SEVERITY".len().max(13),
        report
            .findings
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(0)
            .max(4),
        report
            .findings
            .iter()
            .map(|f| f.package_name.len())
            .max()
            .unwrap_or(0)
            .max(7),
        report
            .findings
            .iter()
            .map(|f| f.package_version.len())
            .max()
            .unwrap_or(0)
            .max(7),
    ];
    let row = |cells: [&str; 5]| {
        println!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    if !report.findings.is_empty() {
        row(["SEVERITY", "NAME", "PACKAGE", "VERSION", "CVSS"]);
    }
    for finding in &report.findings {
        let score = finding
            .cvss
            .as_ref()
            .map(|(_, score)| format!("{score:.1}"))
            .unwrap_or_default();
        row([
            &finding.severity,
            &finding.name,
            &finding.package_name,
            &finding.package_version,
            &score,
        ]);
    }
    let counts: Vec<String> = report
        .severity_counts
        .iter()
        .map(|(severity, count)| format!("{severity} {count}"))
        .collect();
    println!(
        "{} findings{}{}",
        report.findings.len(),
        if counts.is_empty() { "" } else { ": " },
        counts.join(", ")
    );
    Ok(())
}

/// `wharf scan --rescan-all`: queues every image scanned before, then works the queue here.
pub async fn rescan_all(registry: &Registry) -> Result<(), String> {
    let queued = registry.rescan_all().await.map_err(|e| e.to_string())?;
    let shown = |run: &ScanRun| {
        let done: u64 = run.ended.values().sum();
        progress(&format!("{done} of {queued} images scanned"));
    };
    let run = registry
        .run_scans(&shown)
        .await
        .map_err(|e| e.to_string())?;
    end_progress();
    let ended: Vec<String> = run
        .ended
        .iter()
        .map(|(status, count)| format!("{count} {status}"))
        .collect();
    println!(
        "queued {queued} images for a new scan; scanned here: {}{}",
        if ended.is_empty() {
            "none (running servers took them)".to_string()
        } else {
            ended.join(", ")
        },
        if run.retried > 0 {
            format!("; {} left queued to be tried again", run.retried)
        } else {
            String::new()
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_named_by_tag_or_digest() {
        let (name, reference) = image_of("localhost/team/app:1.0").unwrap();
        assert_eq!(name.as_str(), "localhost/team/app");
        assert_eq!(reference, ImageRef::Tag("1.0".parse().unwrap()));
        let digest = format!("sha256:{}", "a".repeat(64));
        let (_, reference) = image_of(&format!("app@{digest}")).unwrap();
        assert_eq!(reference, ImageRef::Digest(digest.parse().unwrap()));
        for bad in ["app", "team/app", "App:1", "app:bad tag", "app@sha256:12"] {
            assert!(image_of(bad).is_err(), "{bad}");
        }
    }
}
