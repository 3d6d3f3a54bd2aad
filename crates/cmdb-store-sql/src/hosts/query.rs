//! Reading hosts: one by key, or a filtered, sorted page with the total.

use cmdb_core::{Error, HostList, HostQuery, HostSort, Result, StoredHost, Vendor};

use super::columns::{decode, select_list};
use super::row::IP_SEPARATOR;
use crate::sql::Sql;
use crate::store::{db_error, SqlStore};

/// Appends `WHERE ...` for a host query.
fn push_filters(sql: &mut Sql<'_>, q: &HostQuery) {
    sql.push(" WHERE 1 = 1");
    if let Some(v) = q.vendor {
        sql.push(" AND vendor = ").bind(v.as_str().to_owned());
    }
    if let Some(r) = &q.region {
        sql.push(" AND region = ").bind(r.clone());
    }
    if let Some(s) = &q.secret_id {
        sql.push(" AND secret_id = ").bind(s.clone());
    }
    if let Some(s) = q.status {
        sql.push(" AND status = ").bind(s.as_str().to_owned());
    }
    match q.released {
        Some(true) => {
            sql.push(" AND released_at IS NOT NULL");
        }
        Some(false) => {
            sql.push(" AND released_at IS NULL");
        }
        None => {}
    }
    if let Some(k) = q.keywords.as_deref().filter(|k| !k.is_empty()) {
        sql.push(" AND (");
        sql.contains("name_lc", &k.to_lowercase());
        sql.push(" OR ");
        sql.contains("instance_id", k);
        // IPs are joined with a separator no address contains, so a needle without
        // it matches within one address only.
        if !k.contains(IP_SEPARATOR) {
            sql.push(" OR ");
            sql.contains("ip_search", k);
        }
        sql.push(")");
    }
}

impl SqlStore {
    /// See [`HostStore::get`](cmdb_core::HostStore::get).
    pub(super) async fn get_host(
        &self,
        vendor: Vendor,
        instance_id: &str,
    ) -> Result<Option<StoredHost>> {
        let backend = self.inner.backend;
        let mut sql = Sql::new(
            backend,
            &format!(
                "SELECT {} FROM cmdb_hosts WHERE vendor = ",
                select_list(backend)
            ),
        );
        sql.bind(vendor.as_str().to_owned())
            .push(" AND instance_id = ")
            .bind(instance_id.to_owned());
        let row = sql
            .build()?
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(decode).transpose()
    }

    /// See [`HostStore::query`](cmdb_core::HostStore::query).
    pub(super) async fn query_hosts(&self, query: &HostQuery) -> Result<HostList> {
        query.validate()?;
        let order = match query.sort {
            HostSort::InstanceId => " ORDER BY vendor, instance_id",
            HostSort::Name => " ORDER BY name, vendor, instance_id",
            HostSort::LastSeenDesc => " ORDER BY last_seen_at DESC, vendor, instance_id",
            // A sort newer than this store: refuse it rather than answer in another order.
            other => {
                return Err(Error::invalid_field(
                    "sort",
                    format!("{other:?} is not supported by the SQL store"),
                ))
            }
        };
        let backend = self.inner.backend;
        let mut count = Sql::new(backend, "SELECT COUNT(*) FROM cmdb_hosts");
        push_filters(&mut count, query);
        let total = self.count(count).await?;

        let mut page = Sql::new(
            backend,
            &format!("SELECT {} FROM cmdb_hosts", select_list(backend)),
        );
        push_filters(&mut page, query);
        page.push(order);
        let rows = self
            .fetch_page(page, query.page_size, query.offset())
            .await?;
        let items = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
        Ok(HostList::new(total, items))
    }
}
