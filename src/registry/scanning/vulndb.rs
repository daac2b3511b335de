//! The vulnerability database: OSV advisories imported from zip files and directories (read
//! by `scan::sources` on a thread of their own), stored in batches under a new generation and
//! then made current for each source (distribution) the import held, replacing what that
//! source held before.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::super::{Error, Registry, Result, now};
use crate::metadata::{AdvisorySource, NewAdvisory};
use crate::scan::sources::{RawRecord, SourceError, read_records, summarize};

/// Advisories written per transaction.
const BATCH: usize = 500;

/// What an import read and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Records read.
    pub records: u64,
    /// Advisories kept, by source (distribution); a record about two counts in both.
    pub advisories: BTreeMap<String, u64>,
    /// Records left out because they were withdrawn.
    pub withdrawn: u64,
    /// Records left out because they are about no distribution that is scanned.
    pub unrelated: u64,
}

impl Registry {
    /// Imports the OSV records under `paths`. Each source found replaces what that source held;
    /// nothing changes if any path or record cannot be read. `progress` sees the tally now and
    /// then.
    pub async fn import_advisories(
        &self,
        paths: Vec<PathBuf>,
        progress: &(dyn Fn(&ImportSummary) + Sync),
    ) -> Result<ImportSummary> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<RawRecord>(BATCH);
        let reader = tokio::task::spawn_blocking(move || {
            for path in paths {
                read_records(&path, &mut |record| {
                    // The receiver only goes away when storing failed, which it reports.
                    sender
                        .blocking_send(record)
                        .map_err(|_| SourceError::Stopped)
                })?;
            }
            Ok::<(), SourceError>(())
        });
        let generation = i64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .expect("8 bytes"),
        )
        .saturating_abs();
        let mut summary = ImportSummary::default();
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(record) = receiver.recv().await {
            summary.records += 1;
            let about = summarize(&record).map_err(|e| Error::AdvisoryImport(e.to_string()))?;
            if about.withdrawn {
                summary.withdrawn += 1;
            } else if about.distributions.is_empty() {
                summary.unrelated += 1;
            }
            for (distribution, packages) in about.distributions {
                if about.withdrawn {
                    continue;
                }
                *summary
                    .advisories
                    .entry(distribution.to_string())
                    .or_default() += 1;
                batch.push(NewAdvisory {
                    source: distribution.to_string(),
                    id: about.id.clone(),
                    record: record.json.clone(),
                    packages,
                });
            }
            if batch.len() >= BATCH {
                self.meta.store_advisories(generation, &batch).await?;
                batch.clear();
                progress(&summary);
            }
        }
        reader
            .await
            .map_err(|e| Error::AdvisoryImport(format!("the reading thread failed: {e}")))?
            .map_err(|e| Error::AdvisoryImport(e.to_string()))?;
        if !batch.is_empty() {
            self.meta.store_advisories(generation, &batch).await?;
        }
        progress(&summary);
        let sources: Vec<(String, u64)> = summary
            .advisories
            .iter()
            .map(|(source, count)| (source.clone(), *count))
            .collect();
        self.meta
            .publish_advisories(generation, &sources, now())
            .await?;
        Ok(summary)
    }

    /// The sources of the vulnerability database, as last imported.
    pub async fn advisory_sources(&self) -> Result<Vec<AdvisorySource>> {
        Ok(self.meta.advisory_sources().await?)
    }
}
