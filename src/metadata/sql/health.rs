//! Health and queue depths in SQL.

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
use crate::metadata::{Connections, HealthStore, MetaResult, QueueCount};

#[async_trait]
impl HealthStore for SqlStore {
    async fn ping(&self) -> MetaResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn connections(&self) -> Connections {
        // On SQLite the readers are a pool of their own; on Postgres `reads` is `pool`.
        let mut pools = vec![&self.pool];
        if self.backend == super::Backend::Sqlite {
            pools.push(&self.reads);
        }
        let mut connections = Connections::default();
        for pool in pools {
            let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
            connections.idle += idle;
            connections.in_use += pool.size().saturating_sub(idle);
            connections.max += pool.options().get_max_connections();
        }
        connections
    }

    async fn queue_counts(&self) -> MetaResult<Vec<QueueCount>> {
        // Only unfinished and failed rows: what the status indexes find without a full scan.
        let rows = sqlx::query(
            "SELECT 'uploads' AS kind, 'IN_PROGRESS' AS status, COUNT(*) AS n FROM uploads \
             UNION ALL SELECT 'replication', status, COUNT(*) FROM replications \
             WHERE status IN ('IN_PROGRESS', 'FAILED') GROUP BY status \
             UNION ALL SELECT 'scan', status, COUNT(*) FROM image_scans \
             WHERE status IN ('IN_PROGRESS', 'FAILED') GROUP BY status",
        )
        .fetch_all(&self.reads)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QueueCount {
                    kind: row.try_get("kind")?,
                    status: row.try_get("status")?,
                    count: row.try_get("n")?,
                })
            })
            .collect()
    }
}
