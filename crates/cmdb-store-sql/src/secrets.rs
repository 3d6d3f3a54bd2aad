//! [`SecretStore`] for [`SqlStore`]. The `api_secret` and `session_token` columns hold
//! only the ciphertexts the [`Secret`] carries; listings are masked.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cmdb_core::{Error, ErrorKind, Result};
use cmdb_secret::{
    mask_api_key, Ciphertexts, DueSync, Secret, SecretList, SecretQuery, SecretStore, SyncInterval,
};
use sqlx::any::AnyRow;

use crate::sql::{
    int, json_column, opt_int, opt_text, opt_time, text, time, time_column, valid_time,
};
use crate::sql::{Backend, Sql};
use crate::store::{db_error, SqlStore};

/// The columns of `cmdb_secrets` as written, in the order [`decode`] reads them.
const COLUMNS: &str = "id, vendor, description, api_key, api_secret, allowed_regions, \
     request_rate, address, created_at, allow_insecure_http, tls_ca_pem, tls_skip_verify, \
     session_token, sync_interval_secs, next_sync_at, sync_failures";

/// [`COLUMNS`] as selected on `backend`: the time and the JSON read as text.
fn select_list(backend: Backend) -> String {
    format!(
        "id, vendor, description, api_key, api_secret, {}, request_rate, address, {}, \
         allow_insecure_http, tls_ca_pem, tls_skip_verify, session_token, \
         sync_interval_secs, {}, sync_failures",
        json_column(backend, "allowed_regions"),
        time_column(backend, "created_at"),
        time_column(backend, "next_sync_at")
    )
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("secret {id:?} not found"))
}

fn decode(row: &AnyRow) -> Result<Secret> {
    // Columns are read in order, so a row broken in several reports the first.
    let id = text(row, 0)?;
    let vendor = text(row, 1)?
        .parse()
        .map_err(|e: cmdb_core::ParseEnumError| Error::decode(e.to_string()))?;
    let description = text(row, 2)?;
    let api_key = text(row, 3)?;
    let api_secret = text(row, 4)?;
    let allowed_regions = serde_json::from_str(&text(row, 5)?)
        .map_err(|e| Error::decode(format!("stored allowed_regions: {e}")))?;
    let request_rate = u32::try_from(int(row, 6)?)
        .map_err(|_| Error::decode("stored request_rate out of range"))?;
    let address = opt_text(row, 7)?;
    let mut secret = Secret::from_stored(id, vendor, api_key, api_secret, time(row, 8)?);
    secret.description = description;
    secret.allowed_regions = allowed_regions;
    secret.request_rate = request_rate;
    secret.address = address;
    secret.allow_insecure_http = opt_int(row, 9)?.unwrap_or(0) != 0;
    secret.tls_ca_pem = opt_text(row, 10)?;
    secret.tls_skip_verify = opt_int(row, 11)?.unwrap_or(0) != 0;
    secret.session_token = opt_text(row, 12)?;
    secret.sync_interval = opt_int(row, 13)?.map(interval).transpose()?;
    secret.next_sync_at = opt_time(row, 14)?;
    secret.sync_failures = u32::try_from(int(row, 15)?)
        .map_err(|_| Error::decode("stored sync_failures out of range"))?;
    Ok(secret)
}

/// A stored `sync_interval_secs`.
fn interval(secs: i64) -> Result<SyncInterval> {
    u64::try_from(secs)
        .ok()
        .and_then(|secs| SyncInterval::new(Duration::from_secs(secs)).ok())
        .ok_or_else(|| Error::decode(format!("stored sync_interval_secs {secs} out of range")))
}

/// A [`SyncInterval`] as stored: seconds.
fn interval_secs(every: Option<SyncInterval>) -> Option<i64> {
    every.map(|e| i64::try_from(e.as_secs()).unwrap_or(i64::MAX))
}

impl SqlStore {
    /// The ciphertexts of the secret `id`, if there is one.
    async fn secret_ciphertexts(&self, id: &str) -> Result<Option<Ciphertexts>> {
        let mut sql = Sql::new(
            self.inner.backend,
            "SELECT api_secret, session_token FROM cmdb_secrets WHERE id = ",
        );
        sql.bind(id.to_owned());
        let row = sql
            .build()?
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.map(|r| Ok(Ciphertexts::new(text(&r, 0)?, opt_text(&r, 1)?)))
            .transpose()
    }
}

#[async_trait]
impl SecretStore for SqlStore {
    async fn create(&self, secret: &Secret) -> Result<()> {
        let regions = serde_json::to_string(&secret.allowed_regions)
            .map_err(|e| Error::store(format!("cannot encode allowed_regions: {e}")))?;
        let mut sql = Sql::new(
            self.inner.backend,
            &format!(
                "INSERT INTO cmdb_secrets ({COLUMNS}, id_lc, description_lc, api_key_lc) VALUES ("
            ),
        );
        sql.bind(secret.id.clone())
            .push(", ")
            .bind(secret.vendor.as_str().to_owned())
            .push(", ")
            .bind(secret.description.clone())
            .push(", ")
            .bind(secret.api_key.clone())
            .push(", ")
            .bind(secret.api_secret.clone())
            .push(", ")
            .bind_json(&regions)
            .push(", ")
            .bind(i64::from(secret.request_rate))
            .push(", ")
            .bind(secret.address.clone())
            .push(", ")
            .bind_time(valid_time("created_at", secret.created_at)?)
            .push(", ")
            .bind(i64::from(secret.allow_insecure_http))
            .push(", ")
            .bind(secret.tls_ca_pem.clone())
            .push(", ")
            .bind(i64::from(secret.tls_skip_verify))
            .push(", ")
            .bind(secret.session_token.clone())
            .push(", ")
            .bind(interval_secs(secret.sync_interval))
            .push(", ")
            .bind_opt_time(secret.next_sync_at)
            .push(", 0, ")
            .bind(secret.id.to_ascii_lowercase())
            .push(", ")
            .bind(secret.description.to_ascii_lowercase())
            .push(", ")
            // The masked key only: a search by key fragments must not recover the key.
            .bind(mask_api_key(&secret.api_key).to_ascii_lowercase())
            .push(")");
        match sql.build()?.execute(self.pool()).await.map_err(db_error) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Conflict => {
                let message = if self.secret_ciphertexts(&secret.id).await?.is_some() {
                    format!("a secret with id {:?} already exists", secret.id)
                } else {
                    format!(
                        "a {} secret with this api_key already exists",
                        secret.vendor
                    )
                };
                Err(Error::new(ErrorKind::Conflict, message))
            }
            Err(e) => Err(e),
        }
    }

    async fn get(&self, id: &str) -> Result<Secret> {
        let mut sql = Sql::new(
            self.inner.backend,
            &format!(
                "SELECT {} FROM cmdb_secrets WHERE id = ",
                select_list(self.inner.backend)
            ),
        );
        sql.bind(id.to_owned());
        let row = sql
            .build()?
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        match row {
            Some(row) => decode(&row),
            None => Err(not_found(id)),
        }
    }

    async fn list(&self, query: &SecretQuery) -> Result<SecretList> {
        query.validate()?;
        let backend = self.inner.backend;
        let filter = |sql: &mut Sql<'_>| {
            if let Some(k) = query.keywords.as_deref().filter(|k| !k.is_empty()) {
                let needle = k.to_ascii_lowercase();
                sql.push(" WHERE ");
                sql.contains("description_lc", &needle).push(" OR ");
                sql.contains("api_key_lc", &needle).push(" OR ");
                sql.contains("vendor", &needle).push(" OR ");
                sql.contains("id_lc", &needle);
            }
        };
        let mut count = Sql::new(backend, "SELECT COUNT(*) FROM cmdb_secrets");
        filter(&mut count);
        let total = self.count(count).await?;

        let mut page = Sql::new(
            backend,
            &format!("SELECT {} FROM cmdb_secrets", select_list(backend)),
        );
        filter(&mut page);
        page.push(" ORDER BY created_at, id");
        let rows = self
            .fetch_page(page, query.page_size, query.offset())
            .await?;
        let items = rows
            .iter()
            .map(|r| decode(r).map(|s| s.masked()))
            .collect::<Result<Vec<_>>>()?;
        Ok(SecretList::new(total, items))
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let mut sql = Sql::new(self.inner.backend, "DELETE FROM cmdb_secrets WHERE id = ");
        sql.bind(id.to_owned());
        let done = sql.build()?.execute(self.pool()).await.map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    async fn replace_ciphertexts(
        &self,
        id: &str,
        expected: &Ciphertexts,
        new: &Ciphertexts,
    ) -> Result<()> {
        let mut sql = Sql::new(self.inner.backend, "UPDATE cmdb_secrets SET api_secret = ");
        sql.bind(new.api_secret.clone())
            .push(", session_token = ")
            .bind(new.session_token.clone())
            .push(" WHERE id = ")
            .bind(id.to_owned())
            .push(" AND api_secret = ")
            .bind(expected.api_secret.clone());
        // `= NULL` is never true: an absent token is expected with IS NULL.
        match &expected.session_token {
            Some(token) => sql.push(" AND session_token = ").bind(token.clone()),
            None => sql.push(" AND session_token IS NULL"),
        };
        let done = sql.build()?.execute(self.pool()).await.map_err(db_error)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        // No row changed: unknown id, other ciphertexts, or (MySQL counts only rows it
        // changed) the new values equal to the expected ones.
        match self.secret_ciphertexts(id).await? {
            None => Err(not_found(id)),
            Some(current) if current == *expected && current == *new => Ok(()),
            Some(_) => Err(Error::new(
                ErrorKind::Conflict,
                format!("the ciphertexts of secret {id:?} changed meanwhile"),
            )),
        }
    }

    async fn update(&self, secret: &Secret, expected: &Ciphertexts) -> Result<()> {
        let regions = serde_json::to_string(&secret.allowed_regions)
            .map_err(|e| Error::store(format!("cannot encode allowed_regions: {e}")))?;
        let id = secret.id.as_str();
        let mut sql = Sql::new(self.inner.backend, "UPDATE cmdb_secrets SET ");
        // The schedule is written only when it changed, so that claims made since the
        // secret was read stand. Before `sync_interval_secs` is set: MySQL evaluates
        // assignments left to right, with the values already assigned.
        match interval_secs(secret.sync_interval) {
            None => sql.push("next_sync_at = NULL, sync_failures = 0"),
            Some(secs) => sql
                .push("next_sync_at = CASE WHEN sync_interval_secs = ")
                .bind(secs)
                .push(" THEN next_sync_at ELSE ")
                .bind_opt_time(secret.next_sync_at)
                .push(" END, sync_failures = CASE WHEN sync_interval_secs = ")
                .bind(secs)
                .push(" THEN sync_failures ELSE 0 END"),
        };
        sql.push(", sync_interval_secs = ")
            .bind(interval_secs(secret.sync_interval))
            .push(", description = ")
            .bind(secret.description.clone())
            .push(", description_lc = ")
            .bind(secret.description.to_ascii_lowercase())
            .push(", api_key = ")
            .bind(secret.api_key.clone())
            .push(", api_key_lc = ")
            // The masked key only, as `create` writes it.
            .bind(mask_api_key(&secret.api_key).to_ascii_lowercase())
            .push(", api_secret = ")
            .bind(secret.api_secret.clone())
            .push(", session_token = ")
            .bind(secret.session_token.clone())
            .push(", allowed_regions = ")
            .bind_json(&regions)
            .push(", request_rate = ")
            .bind(i64::from(secret.request_rate))
            .push(", address = ")
            .bind(secret.address.clone())
            .push(", allow_insecure_http = ")
            .bind(i64::from(secret.allow_insecure_http))
            .push(", tls_ca_pem = ")
            .bind(secret.tls_ca_pem.clone())
            .push(", tls_skip_verify = ")
            .bind(i64::from(secret.tls_skip_verify))
            .push(" WHERE id = ")
            .bind(id.to_owned())
            .push(" AND api_secret = ")
            .bind(expected.api_secret.clone());
        // `= NULL` is never true: an absent token is expected with IS NULL.
        match &expected.session_token {
            Some(token) => sql.push(" AND session_token = ").bind(token.clone()),
            None => sql.push(" AND session_token IS NULL"),
        };
        let done = match sql.build()?.execute(self.pool()).await.map_err(db_error) {
            Ok(done) => done,
            // The only unique key an update can break: (vendor, api_key).
            Err(e) if e.kind() == ErrorKind::Conflict => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "a {} secret with this api_key already exists",
                        secret.vendor
                    ),
                ))
            }
            Err(e) => return Err(e),
        };
        if done.rows_affected() == 1 {
            return Ok(());
        }
        // No row changed: unknown id, other ciphertexts, or (MySQL counts only rows it
        // changed) a secret equal to the stored one.
        match self.secret_ciphertexts(id).await? {
            None => Err(not_found(id)),
            Some(current) if current == *expected && current == secret.ciphertexts() => Ok(()),
            Some(_) => Err(Error::new(
                ErrorKind::Conflict,
                format!("secret {id:?} changed meanwhile"),
            )),
        }
    }

    async fn due_syncs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueSync>> {
        let backend = self.inner.backend;
        let mut sql = Sql::new(
            backend,
            &format!(
                "SELECT id, {}, sync_interval_secs, sync_failures FROM cmdb_secrets \
                 WHERE sync_interval_secs IS NOT NULL AND next_sync_at <= ",
                time_column(backend, "next_sync_at")
            ),
        );
        sql.bind_time(valid_time("now", now)?)
            .push(" ORDER BY next_sync_at, id LIMIT ")
            .bind(i64::from(limit));
        let rows = sql
            .build()?
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let failures = u32::try_from(int(row, 3)?)
                    .map_err(|_| Error::decode("stored sync_failures out of range"))?;
                Ok(DueSync::new(
                    text(row, 0)?,
                    time(row, 1)?,
                    interval(int(row, 2)?)?,
                    failures,
                ))
            })
            .collect()
    }

    async fn claim_sync(
        &self,
        id: &str,
        due_at: DateTime<Utc>,
        next_at: DateTime<Utc>,
    ) -> Result<bool> {
        // A compare-and-swap on the due time: of the processes that saw it due, the one
        // whose update finds it unchanged wins; the others' match no row.
        let mut sql = Sql::new(
            self.inner.backend,
            "UPDATE cmdb_secrets SET next_sync_at = ",
        );
        sql.bind_time(valid_time("next_at", next_at)?)
            .push(" WHERE id = ")
            .bind(id.to_owned())
            .push(" AND sync_interval_secs IS NOT NULL AND next_sync_at = ")
            .bind_time(valid_time("due_at", due_at)?);
        let done = sql.build()?.execute(self.pool()).await.map_err(db_error)?;
        // MySQL counts changed rows only: a claim that moves nothing has not claimed.
        Ok(done.rows_affected() == 1 && next_at != due_at)
    }

    async fn record_sync_outcome(
        &self,
        id: &str,
        failures: u32,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let mut sql = Sql::new(
            self.inner.backend,
            "UPDATE cmdb_secrets SET sync_failures = ",
        );
        sql.bind(i64::from(failures));
        if let Some(at) = not_before {
            let at = valid_time("not_before", at)?;
            sql.push(", next_sync_at = CASE WHEN next_sync_at < ")
                .bind_time(at)
                .push(" THEN ")
                .bind_time(at)
                .push(" ELSE next_sync_at END");
        }
        sql.push(" WHERE id = ")
            .bind(id.to_owned())
            .push(" AND sync_interval_secs IS NOT NULL");
        sql.build()?.execute(self.pool()).await.map_err(db_error)?;
        Ok(())
    }
}
