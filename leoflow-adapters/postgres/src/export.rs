//! A logical export of Leoflow's database without `pg_dump`: every table of the schema
//! (but the migrations' own bookkeeping) as `COPY … TO STDOUT` text, read in one
//! repeatable-read snapshot and ordered so that a table comes after the tables its foreign
//! keys point at. [`import`] loads such an export into a fresh database migrated to the
//! export's schema version, so the data always meets the schema it was written under; the
//! caller then migrates to the latest version as usual.

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use crate::error::Error;
use crate::migrate;
use crate::PostgresConfig;

/// A database's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The highest migration applied to the exported database.
    pub schema_version: i64,
    /// In load order: referenced tables first.
    pub tables: Vec<Table>,
}

/// One table's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    /// The stored columns (generated ones are left out), in the order of `data`.
    pub columns: Vec<String>,
    /// The rows in `COPY` text format.
    pub data: Vec<u8>,
}

/// Reads every table of the database `url` names.
pub async fn export(url: &str) -> Result<Export, Error> {
    let options = PostgresConfig::new(url).connect_options()?;
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| migrate::connect_error(&options, &e))?;
    let result = read_all(&mut conn).await;
    let _ = conn.close().await;
    result
}

async fn read_all(conn: &mut PgConnection) -> Result<Export, Error> {
    let mut tx = conn.begin().await.map_err(failed)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    let schema_version = migrate::applied_max(&mut tx).await?.unwrap_or(0);
    let names: Vec<String> = sqlx::query(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT c.relispartition \
         AND c.relname <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(failed)?
    .iter()
    .map(|row| row.try_get(0))
    .collect::<Result<_, _>>()
    .map_err(failed)?;
    let references: Vec<(String, String)> = sqlx::query(
        "SELECT c.relname::text, r.relname::text FROM pg_constraint k \
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE k.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(failed)?
    .iter()
    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
    .collect::<Result<_, sqlx::Error>>()
    .map_err(failed)?;
    let mut tables = Vec::new();
    for name in load_order(&names, &references) {
        let columns: Vec<String> = sqlx::query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = quote_ident($1)::regclass \
             AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
        )
        .bind(&name)
        .fetch_all(&mut *tx)
        .await
        .map_err(failed)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(failed)?;
        let statement = format!(
            "COPY {} ({}) TO STDOUT",
            quote(&name),
            column_list(&columns)
        );
        let chunks: Vec<_> = tx
            .copy_out_raw(&statement)
            .await
            .map_err(failed)?
            .try_collect()
            .await
            .map_err(failed)?;
        let data = chunks.concat();
        tables.push(Table {
            name,
            columns,
            data,
        });
    }
    tx.commit().await.map_err(failed)?;
    Ok(Export {
        schema_version,
        tables,
    })
}

/// Loads `export` into the database `url` names, which must be empty (freshly created):
/// migrates it to the export's schema version, then copies every table and moves each
/// sequence past the highest value loaded, all in one transaction.
pub async fn import(url: &str, export: &Export) -> Result<(), Error> {
    if export.schema_version > migrate::schema_version() {
        return Err(Error::SchemaTooNew {
            database: export.schema_version,
            known: migrate::schema_version(),
        });
    }
    let options = PostgresConfig::new(url).connect_options()?;
    migrate::migrate_to(&options, export.schema_version).await?;
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| migrate::connect_error(&options, &e))?;
    let result = load(&mut conn, export).await;
    let _ = conn.close().await;
    result
}

async fn load(conn: &mut PgConnection, export: &Export) -> Result<(), Error> {
    let mut tx = conn.begin().await.map_err(failed)?;
    if !export.tables.is_empty() {
        // Migrations may seed rows; the export holds them already.
        let all: Vec<String> = export.tables.iter().map(|t| quote(&t.name)).collect();
        sqlx::query(&format!("TRUNCATE {} CASCADE", all.join(", ")))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
    }
    for table in &export.tables {
        let statement = format!(
            "COPY {} ({}) FROM STDIN",
            quote(&table.name),
            column_list(&table.columns)
        );
        let mut copy = tx.copy_in_raw(&statement).await.map_err(failed)?;
        if !table.data.is_empty() {
            copy.send(table.data.as_slice()).await.map_err(failed)?;
        }
        copy.finish().await.map_err(failed)?;
        for column in &table.columns {
            let sequence: Option<String> =
                sqlx::query("SELECT pg_get_serial_sequence(quote_ident($1), $2)")
                    .bind(&table.name)
                    .bind(column)
                    .fetch_one(&mut *tx)
                    .await
                    .and_then(|row| row.try_get(0))
                    .map_err(failed)?;
            if let Some(sequence) = sequence {
                let max = format!(
                    "(SELECT max({}) FROM {})",
                    quote(column),
                    quote(&table.name)
                );
                sqlx::query(&format!(
                    "SELECT setval($1, COALESCE({max}, 1), {max} IS NOT NULL)"
                ))
                .bind(&sequence)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            }
        }
    }
    tx.commit().await.map_err(failed)
}

/// `names` ordered so that every table comes after the tables it references (ties and
/// cycles in name order).
fn load_order(names: &[String], references: &[(String, String)]) -> Vec<String> {
    let mut pending: BTreeMap<&str, BTreeSet<&str>> = names
        .iter()
        .map(|n| (n.as_str(), BTreeSet::new()))
        .collect();
    for (from, to) in references {
        if from != to && pending.contains_key(to.as_str()) {
            if let Some(deps) = pending.get_mut(from.as_str()) {
                deps.insert(to.as_str());
            }
        }
    }
    let mut order = Vec::new();
    while !pending.is_empty() {
        let ready: Vec<&str> = pending
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(name, _)| *name)
            .collect();
        let next = if ready.is_empty() {
            // A cycle (only deferrable keys allow one): take the first name as it is.
            pending.keys().take(1).copied().collect()
        } else {
            ready
        };
        for name in next {
            pending.remove(name);
            for deps in pending.values_mut() {
                deps.remove(name);
            }
            order.push(name.to_string());
        }
    }
    order
}

fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[allow(clippy::needless_pass_by_value)] // Shaped for `map_err(failed)`.
fn failed(e: sqlx::Error) -> Error {
    Error::Export {
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_tables_load_first() {
        let names: Vec<String> = ["a_child", "b_parent", "c_free", "d_grandchild"]
            .map(String::from)
            .into();
        let refs = [
            ("a_child".to_string(), "b_parent".to_string()),
            ("d_grandchild".to_string(), "a_child".to_string()),
            ("a_child".to_string(), "a_child".to_string()),
        ];
        assert_eq!(
            load_order(&names, &refs),
            ["b_parent", "c_free", "a_child", "d_grandchild"]
        );
    }
}
