//! The providers compiled in behind features.

use cmdb_core::Vendor;

use crate::registry::ProviderRegistry;

#[cfg(feature = "aliyun")]
mod aliyun;
#[cfg(feature = "huawei")]
mod huawei;
#[cfg(feature = "tencent")]
mod tencent;
#[cfg(feature = "vsphere")]
mod vsphere;

impl ProviderRegistry {
    /// A registry with every provider compiled into this build: features `aliyun`,
    /// `tencent`, `huawei` and `vsphere` of this crate or of the `cmdb` facade; the
    /// first three list database instances (RDS) too.
    pub fn with_builtin_providers() -> ProviderRegistry {
        #[allow(unused_mut)]
        let mut registry = ProviderRegistry::new();
        #[cfg(feature = "aliyun")]
        registry.register(Vendor::Aliyun, aliyun::factory);
        #[cfg(feature = "aliyun")]
        registry.register_databases(Vendor::Aliyun, aliyun::database_factory);
        #[cfg(feature = "tencent")]
        registry.register(Vendor::Tencent, tencent::factory);
        #[cfg(feature = "tencent")]
        registry.register_databases(Vendor::Tencent, tencent::database_factory);
        #[cfg(feature = "huawei")]
        registry.register(Vendor::Huawei, huawei::factory);
        #[cfg(feature = "huawei")]
        registry.register_databases(Vendor::Huawei, huawei::database_factory);
        #[cfg(feature = "vsphere")]
        registry.register(Vendor::Vsphere, vsphere::factory);
        let _ = Vendor::ALL;
        registry
    }
}
