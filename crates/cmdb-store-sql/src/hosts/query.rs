//! Reading hosts: one by key, or a filtered, sorted page with the total.

use cmdb_core::{Error, HostList, HostQuery, HostSort, Result, StoredHost, Vendor};

use super::columns::{decode, HOSTS};
use crate::records::{Filters, Order};
use crate::store::SqlStore;

impl SqlStore {
    /// See [`HostStore::get`](cmdb_core::HostStore::get).
    pub(super) async fn get_host(
        &self,
        vendor: Vendor,
        instance_id: &str,
    ) -> Result<Option<StoredHost>> {
        let row = self.get_record(&HOSTS, vendor, instance_id).await?;
        row.as_ref().map(decode).transpose()
    }

    /// See [`HostStore::query`](cmdb_core::HostStore::query).
    pub(super) async fn query_hosts(&self, query: &HostQuery) -> Result<HostList> {
        query.validate()?;
        let order = match query.sort {
            HostSort::InstanceId => Order::InstanceId,
            HostSort::Name => Order::Name,
            HostSort::LastSeenDesc => Order::LastSeenDesc,
            // A sort newer than this store: refuse it rather than answer in another order.
            other => {
                return Err(Error::invalid_field(
                    "sort",
                    format!("{other:?} is not supported by the SQL store"),
                ))
            }
        };
        let filters = Filters {
            vendor: query.vendor,
            region: query.region.as_deref(),
            secret_id: query.secret_id.as_deref(),
            status: query.status.map(|s| s.as_str()),
            released: query.released,
            keywords: query.keywords.as_deref(),
        };
        let (total, rows) = self
            .query_records(&HOSTS, &filters, order, query.page_size, query.offset())
            .await?;
        let items = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
        Ok(HostList::new(total, items))
    }
}
