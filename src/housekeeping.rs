//! The `wharf lifecycle`, `wharf gc`, `wharf storage` and `wharf replication` commands: the
//! registry's housekeeping run from a terminal. Long work shows its progress on standard error when
//! that is a terminal, and every command ends with a summary on standard output. Depends on
//! `registry` and `config` only.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::config::{LifecycleAction, ReplicationAction, StorageAction};
use crate::metadata::now_millis as now;
use crate::oci::RepoName;
use crate::registry::{
    Backfill, CollectionStep, PreviewResult, Registry, ReplicationConfiguration, StorageStep,
};

/// Shows one line of progress, rewritten in place; nothing when standard error is not a
/// terminal.
pub(crate) fn progress(line: &str) {
    if std::io::stderr().is_terminal() {
        let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
    }
}

/// Clears the progress line before the summary.
pub(crate) fn end_progress() {
    progress("");
}

fn failed(name: &str) -> impl Fn(crate::registry::Error) -> String + '_ {
    move |e| format!("{name}: {e}")
}

fn repository(name: &str) -> Result<RepoName, String> {
    name.parse()
        .map_err(|e: crate::oci::NameError| e.to_string())
}

/// A policy document from a file, or from standard input for `-`.
pub fn read_document(file: &Path) -> Result<String, String> {
    if file.as_os_str() == "-" {
        return std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string());
    }
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// A time in milliseconds as RFC 3339, to the second.
pub fn rfc3339(millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(millis / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Prints what expires (or would), one image per line, and how many.
fn print_expiries(repository: &str, results: &[PreviewResult]) {
    for result in results {
        let tags = if result.tags.is_empty() {
            "<untagged>".to_string()
        } else {
            result.tags.join(",")
        };
        println!(
            "{repository}\t{}\t{tags}\t{}\trule {}",
            result.digest,
            rfc3339(result.pushed_at),
            result.rule_priority
        );
    }
}

/// `wharf replication set FILE|get`.
pub async fn replication(registry: &Registry, action: ReplicationAction) -> Result<(), String> {
    match action {
        ReplicationAction::Set { file } => {
            let document = read_document(&file)?;
            let configuration: ReplicationConfiguration = serde_json::from_str(&document)
                .map_err(|e| format!("invalid replication configuration: {e}"))?;
            registry
                .put_replication_configuration(&configuration)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "set the replication configuration ({} rules)",
                configuration.rules.len()
            );
        }
        ReplicationAction::Backfill { repository } => {
            let show = |done: &Backfill| {
                progress(&format!(
                    "backfill: {} images in {} repositories, {} copies queued",
                    done.images, done.repositories, done.queued
                ))
            };
            let done = registry
                .backfill_replication(repository.as_deref(), &show)
                .await
                .map_err(|e| e.to_string())?;
            end_progress();
            println!(
                "queued {} copies of {} images in {} repositories; a running server makes \
                 them (wharf serve, --replication-interval)",
                done.queued, done.images, done.repositories
            );
        }
        ReplicationAction::Get => {
            let configuration = registry
                .replication_configuration()
                .await
                .map_err(|e| e.to_string())?;
            let text = serde_json::to_string_pretty(&configuration).expect("serializes");
            println!("{text}");
        }
    }
    Ok(())
}

pub async fn lifecycle(registry: &Registry, action: LifecycleAction) -> Result<(), String> {
    match action {
        LifecycleAction::Set {
            repository: name,
            file,
        } => {
            let document = read_document(&file)?;
            registry
                .put_lifecycle_policy(&repository(&name)?, &document)
                .await
                .map_err(failed(&name))?;
            println!("set the lifecycle policy of {name}");
        }
        LifecycleAction::Get { repository: name } => {
            let text = registry.lifecycle_policy(&repository(&name)?).await;
            println!("{}", text.map_err(failed(&name))?);
        }
        LifecycleAction::Delete { repository: name } => {
            let repo = repository(&name)?;
            registry
                .delete_lifecycle_policy(&repo)
                .await
                .map_err(failed(&name))?;
            println!("deleted the lifecycle policy of {name}");
        }
        LifecycleAction::Preview {
            repository: name,
            file,
        } => {
            let document = file.as_deref().map(read_document).transpose()?;
            let (_, results) = registry
                .preview_lifecycle(&repository(&name)?, document.as_deref(), now())
                .await
                .map_err(failed(&name))?;
            println!("REPOSITORY\tDIGEST\tTAGS\tPUSHED\tRULE");
            print_expiries(&name, &results);
            println!("{} images would expire", results.len());
        }
        LifecycleAction::Run => {
            let report = |repository: &str, expired: &[PreviewResult]| {
                progress(&format!("applied the policy of {repository}"));
                print_expiries(repository, expired);
            };
            let run = registry
                .apply_all_lifecycles(now(), &report)
                .await
                .map_err(|e| e.to_string())?;
            end_progress();
            println!(
                "applied the lifecycle policies of {} repositories: {} images expired",
                run.repositories, run.expired
            );
        }
    }
    Ok(())
}

pub async fn gc(registry: &Registry, dry_run: bool) -> Result<(), String> {
    let show = |step: CollectionStep<'_>| match step {
        CollectionStep::Links { repository, done } => {
            progress(&format!("links: {done} repositories swept ({repository})"))
        }
        CollectionStep::Blobs { done, bytes } => {
            progress(&format!("blobs: {done} removed, {bytes} bytes"))
        }
    };
    let started = std::time::Instant::now();
    let done = registry
        .collect_garbage(now(), dry_run, &show)
        .await
        .map_err(|e| e.to_string())?;
    end_progress();
    let verb = if dry_run { "would remove" } else { "removed" };
    println!(
        "garbage collection {verb} {} links in {} repositories, {} blobs ({} bytes) and {} \
         stale uploads, in {:.1} s",
        done.links,
        done.repositories,
        done.blobs,
        done.bytes,
        done.uploads,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub async fn storage(registry: &Registry, action: StorageAction) -> Result<(), String> {
    let StorageAction::Check { repair, json } = action;
    let show = |step: StorageStep| match step {
        StorageStep::Blobs { compared } => progress(&format!("compared {compared} blobs")),
        StorageStep::Repositories { done } => progress(&format!("counted {done} repositories")),
    };
    let report = registry
        .check_storage(repair, &show)
        .await
        .map_err(|e| e.to_string())?;
    end_progress();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        for missing in &report.missing {
            println!(
                "missing\t{}\t{} bytes\tlinked from {} repositories",
                missing.digest, missing.size, missing.links
            );
        }
        for orphan in &report.orphans {
            let state = if orphan.removed { "removed" } else { "kept" };
            println!("orphan\t{}\t{} bytes\t{state}", orphan.digest, orphan.size);
        }
        for digest in &report.size_mismatches {
            println!("size mismatch\t{digest}");
        }
        for staged in &report.stale_staging {
            let state = if staged.removed { "removed" } else { "kept" };
            println!("stale upload\t{}\t{state}", staged.upload);
        }
        for usage in &report.repositories {
            println!(
                "repository\t{}\t{} blobs\t{} bytes",
                usage.repository, usage.blobs, usage.bytes
            );
        }
        println!(
            "{} blobs recorded, {} stored ({} bytes): {} missing, {} orphans ({} removed), {} \
             size mismatches, {} stale uploads ({} removed)",
            report.recorded_blobs,
            report.stored_blobs,
            report.stored_bytes,
            report.missing.len(),
            report.orphans.len(),
            report.orphans.iter().filter(|o| o.removed).count(),
            report.size_mismatches.len(),
            report.stale_staging.len(),
            report.stale_staging.iter().filter(|s| s.removed).count(),
        );
    }
    if report.missing.iter().any(|missing| missing.links > 0) || !report.size_mismatches.is_empty()
    {
        return Err("storage does not hold everything the metadata records".into());
    }
    Ok(())
}
