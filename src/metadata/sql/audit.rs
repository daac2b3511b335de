//! The audit trail in SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, placeholders};
use crate::metadata::{AuditCursor, AuditFilter, AuditRecord, AuditStore, MetaResult, Millis};

const COLUMNS: &str = "event_id, event_time, event_name, user_type, user_name, access_key_id, \
     source_ip, user_agent, request_id, repository, request_parameters, response_elements, \
     error_code, error_message";

fn record(row: &AnyRow) -> MetaResult<AuditRecord> {
    Ok(AuditRecord {
        event_id: row.try_get("event_id")?,
        event_time: row.try_get("event_time")?,
        event_name: row.try_get("event_name")?,
        user_type: row.try_get("user_type")?,
        user_name: row.try_get("user_name")?,
        access_key_id: row.try_get("access_key_id")?,
        source_ip: row.try_get("source_ip")?,
        user_agent: row.try_get("user_agent")?,
        request_id: row.try_get("request_id")?,
        repository: row.try_get("repository")?,
        request_parameters: row.try_get("request_parameters")?,
        response_elements: row.try_get("response_elements")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
    })
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> MetaResult<()> {
        // One short statement per record, prepared once: the transaction holds the database's
        // one writer (on SQLite) no longer than the rows take, so pushes do not queue behind it.
        let statement = format!(
            "INSERT INTO audit_events ({COLUMNS}) VALUES ({}) ON CONFLICT DO NOTHING",
            placeholders(1, 14)
        );
        let mut tx = self.begin().await?;
        for r in records {
            sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                .bind(&r.event_id)
                .bind(r.event_time)
                .bind(&r.event_name)
                .bind(&r.user_type)
                .bind(&r.user_name)
                .bind(&r.access_key_id)
                .bind(&r.source_ip)
                .bind(&r.user_agent)
                .bind(&r.request_id)
                .bind(&r.repository)
                .bind(&r.request_parameters)
                .bind(&r.response_elements)
                .bind(&r.error_code)
                .bind(&r.error_message)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn audit_events(
        &self,
        filter: &AuditFilter,
        after: Option<&AuditCursor>,
        limit: u32,
    ) -> MetaResult<Vec<AuditRecord>> {
        // Each condition with its values, numbered in the order they are bound.
        enum Value<'a> {
            Time(Millis),
            Text(&'a str),
        }
        let mut conditions: Vec<String> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(since) = filter.since {
            values.push(Value::Time(since));
            conditions.push(format!("event_time >= ${}", values.len()));
        }
        if let Some(until) = filter.until {
            values.push(Value::Time(until));
            conditions.push(format!("event_time < ${}", values.len()));
        }
        for (column, value) in [
            ("user_name", &filter.user),
            ("repository", &filter.repository),
            ("event_name", &filter.event_name),
        ] {
            if let Some(value) = value {
                values.push(Value::Text(value));
                conditions.push(format!("{column} = ${}", values.len()));
            }
        }
        if filter.failed {
            conditions.push("error_code IS NOT NULL".into());
        }
        if let Some(after) = after {
            values.push(Value::Time(after.event_time));
            values.push(Value::Text(&after.event_id));
            let (time, id) = (values.len() - 1, values.len());
            conditions.push(format!(
                "(event_time < ${time} OR (event_time = ${time} AND event_id < ${id}))"
            ));
        }
        let mut statement = format!("SELECT {COLUMNS} FROM audit_events");
        if !conditions.is_empty() {
            statement.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
        }
        statement.push_str(&format!(
            " ORDER BY event_time DESC, event_id DESC LIMIT {limit}"
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
        for value in values {
            query = match value {
                Value::Time(time) => query.bind(time),
                Value::Text(text) => query.bind(text),
            };
        }
        let rows = query.fetch_all(&self.reads).await?;
        rows.iter().map(record).collect()
    }

    async fn purge_audit(&self, before: Millis) -> MetaResult<u64> {
        let purged = sqlx::query("DELETE FROM audit_events WHERE event_time < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(purged.rows_affected())
    }
}
