//! Hostile and malformed input, property-tested with a bounded number of cases: every
//! vendor's response parser and mapper (through its public provider, against a local
//! server answering generated bodies), the vSphere SOAP parser, the signers (through
//! generated regions and keys, and Alibaba's public encoders) and the API's JSON
//! bodies. Nothing may panic; every failure is a typed error.

use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::http::StatusCode;
use cmdb::core::{ErrorKind, HostProvider};
use cmdb::http::{HttpConfig, RetryConfig};
use cmdb::secret::Credentials;
use proptest::prelude::*;
use serde_json::{json, Value};

/// A local server answering every request with the current (status, body).
struct Hostile {
    base: String,
    answer: Arc<Mutex<(u16, Vec<u8>)>>,
    runtime: tokio::runtime::Runtime,
}

fn hostile() -> &'static Hostile {
    static SERVER: OnceLock<Hostile> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let answer = Arc::new(Mutex::new((200u16, Vec::new())));
        let shared = Arc::clone(&answer);
        let base = runtime.block_on(async move {
            let app = axum::Router::new().fallback(move || {
                let shared = Arc::clone(&shared);
                async move {
                    let (status, body) = shared.lock().unwrap().clone();
                    (StatusCode::from_u16(status).unwrap(), Bytes::from(body))
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            base
        });
        Hostile {
            base,
            answer,
            runtime,
        }
    })
}

fn http() -> HttpConfig {
    HttpConfig::default()
        .with_request_timeout(std::time::Duration::from_secs(5))
        .with_retry(RetryConfig::no_retry())
}

/// The first page of `provider` against `status`/`body`: Ok, or a typed error.
fn first_page(
    provider: Arc<dyn HostProvider>,
    status: u16,
    body: Vec<u8>,
) -> Result<(), ErrorKind> {
    let h = hostile();
    *h.answer.lock().unwrap() = (status, body);
    h.runtime.block_on(async move {
        use futures::StreamExt;
        match provider.pages().next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.kind()),
        }
    })
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(Value::from("2099-12-31T15:59Z")),
        Just(Value::from("1.2.3.4")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[A-Za-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `base` with `field` (one of `fields`, or any name) set to `value`, nested under
/// `path` when given.
fn mutate(mut base: Value, fields: &[&str], pick: usize, value: Value) -> Value {
    let name = fields[pick % fields.len()];
    let mut target = &mut base;
    for part in name.split('.') {
        if !target.is_object() {
            *target = json!({});
        }
        target = target
            .as_object_mut()
            .unwrap()
            .entry(part.to_owned())
            .or_insert(Value::Null);
    }
    *target = value;
    base
}

const ALIYUN_FIELDS: &[&str] = &[
    "InstanceId",
    "InstanceName",
    "Status",
    "CreationTime",
    "ExpiredTime",
    "Cpu",
    "Memory",
    "GPUAmount",
    "OSType",
    "InstanceChargeType",
    "SpotStrategy",
    "PublicIpAddress",
    "PublicIpAddress.IpAddress",
    "EipAddress",
    "EipAddress.IpAddress",
    "VpcAttributes",
    "VpcAttributes.PrivateIpAddress.IpAddress",
    "InnerIpAddress",
    "Tags",
    "Tags.Tag",
    "SecurityGroupIds",
    "NetworkInterfaces",
    "OperationLocks",
    "ZoneId",
    "RegionId",
];
const TENCENT_FIELDS: &[&str] = &[
    "InstanceId",
    "InstanceName",
    "InstanceState",
    "CPU",
    "Memory",
    "CreatedTime",
    "ExpiredTime",
    "InstanceChargeType",
    "PrivateIpAddresses",
    "PublicIpAddresses",
    "Tags",
    "Placement",
    "Placement.Zone",
    "OsName",
    "VirtualPrivateCloud",
    "SecurityGroupIds",
    "LoginSettings",
    "GPUInfo",
    "GPUInfo.GPUCount",
];
const HUAWEI_FIELDS: &[&str] = &[
    "id",
    "name",
    "status",
    "created",
    "flavor",
    "flavor.vcpus",
    "flavor.ram",
    "addresses",
    "metadata",
    "metadata.charging_mode",
    "tags",
    "sys_tags",
    "security_groups",
    "image",
    "OS-EXT-AZ:availability_zone",
    "OS-EXT-SRV-ATTR:hostname",
    "key_name",
    "fault",
];

fn aliyun_provider() -> Arc<dyn HostProvider> {
    Arc::new(
        cmdb::aliyun::AliyunBuilder::new()
            .with_credentials(Credentials::new("LTAI5tHostile", "hostile-secret"))
            .with_region("cn-hangzhou")
            .with_endpoint(hostile().base.clone())
            .with_http_config(http())
            .build()
            .unwrap(),
    )
}

fn tencent_provider() -> Arc<dyn HostProvider> {
    Arc::new(
        cmdb::tencent::TencentBuilder::new()
            .with_credentials(Credentials::new("AKIDhostile", "hostile-secret"))
            .with_region("ap-guangzhou")
            .with_endpoint(hostile().base.clone())
            .with_http_config(http())
            .build()
            .unwrap(),
    )
}

fn huawei_provider() -> Arc<dyn HostProvider> {
    Arc::new(
        cmdb::huawei::HuaweiBuilder::new()
            .with_credentials(Credentials::new("HWHOSTILE", "hostile-secret"))
            .with_region("cn-north-4")
            .with_project_id("0123456789abcdef0123456789abcdef")
            .with_endpoint(hostile().base.clone())
            .with_http_config(http())
            .build()
            .unwrap(),
    )
}

fn vsphere_provider() -> Arc<dyn HostProvider> {
    Arc::new(
        cmdb::vsphere::VsphereBuilder::new()
            .with_endpoint(hostile().base.clone())
            .with_credentials(Credentials::new("user", "hostile-password"))
            .with_http_config(http())
            .build()
            .unwrap(),
    )
}

/// An HTTP status a server might answer.
fn any_status() -> impl Strategy<Value = u16> {
    prop_oneof![4 => Just(200u16), 1 => Just(400u16), 1 => Just(403u16), 1 => Just(429u16), 1 => Just(500u16), 1 => Just(503u16)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn aliyun_pages_never_panic(status in any_status(), pick in any::<usize>(), value in any_json(), total in any_json(), token in any_json()) {
        let instance = mutate(json!({"InstanceId": "i-1", "Status": "Running", "CreationTime": "2024-01-01T00:00Z"}), ALIYUN_FIELDS, pick, value);
        let body = json!({"RequestId": "r", "TotalCount": total, "NextToken": token, "Instances": {"Instance": [instance]}});
        let _ = first_page(aliyun_provider(), status, body.to_string().into_bytes());
    }

    #[test]
    fn tencent_pages_never_panic(status in any_status(), pick in any::<usize>(), value in any_json(), total in any_json()) {
        let instance = mutate(json!({"InstanceId": "ins-1", "InstanceState": "RUNNING"}), TENCENT_FIELDS, pick, value);
        let body = json!({"Response": {"RequestId": "r", "TotalCount": total, "InstanceSet": [instance]}});
        let _ = first_page(tencent_provider(), status, body.to_string().into_bytes());
    }

    #[test]
    fn huawei_pages_never_panic(status in any_status(), pick in any::<usize>(), value in any_json(), count in any_json()) {
        let server = mutate(json!({"id": "s-1", "status": "ACTIVE", "name": "n"}), HUAWEI_FIELDS, pick, value);
        let body = json!({"count": count, "servers": [server]});
        let _ = first_page(huawei_provider(), status, body.to_string().into_bytes());
    }

    #[test]
    fn any_bytes_as_any_answer_are_a_typed_error(status in any_status(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        for provider in [aliyun_provider(), tencent_provider(), huawei_provider(), vsphere_provider()] {
            let vendor = provider.vendor();
            let r = first_page(provider, status, body.clone());
            // Garbage is never a page of hosts for vSphere (it needs a login first).
            if vendor == cmdb::core::Vendor::Vsphere {
                prop_assert!(r.is_err());
            }
        }
    }

    #[test]
    fn soap_envelopes_never_panic(tag in "[A-Za-z:]{1,12}", text in ".{0,60}", depth in 0usize..6, fault in any::<bool>(), truncate in any::<u16>()) {
        let mut inner = text.replace('<', "&lt;");
        for _ in 0..depth {
            inner = format!("<{tag} xsi:type=\"{tag}\">{inner}</{tag}>");
        }
        let body = if fault {
            format!(r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{inner}</faultstring><detail><{tag}Fault>{inner}</{tag}Fault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#)
        } else {
            format!(r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrieveServiceContentResponse xmlns="urn:vim25"><returnval>{inner}</returnval></RetrieveServiceContentResponse></soapenv:Body></soapenv:Envelope>"#)
        };
        let mut bytes = body.into_bytes();
        let cut = usize::from(truncate) % (bytes.len() + 1);
        if truncate % 3 == 0 {
            bytes.truncate(cut);
        }
        let r = first_page(vsphere_provider(), if fault { 500 } else { 200 }, bytes);
        prop_assert!(r.is_err(), "a service content without a session cannot list");
    }

    #[test]
    fn every_signer_takes_any_region_and_key(region in ".{0,24}", key in ".{0,24}", secret in ".{0,24}") {
        // Each provider signs its first request with these; building may refuse them,
        // signing must not panic, and a refusal is a typed error.
        let base = hostile().base.clone();
        *hostile().answer.lock().unwrap() = (403, b"{}".to_vec());
        let creds = || Credentials::new(key.clone(), secret.clone());
        let built: Vec<cmdb::core::Result<Arc<dyn HostProvider>>> = vec![
            cmdb::aliyun::AliyunBuilder::new().with_credentials(creds()).with_region(region.clone()).with_endpoint(base.clone()).with_http_config(http()).build().map(|p| Arc::new(p) as Arc<dyn HostProvider>),
            cmdb::tencent::TencentBuilder::new().with_credentials(creds()).with_region(region.clone()).with_endpoint(base.clone()).with_http_config(http()).build().map(|p| Arc::new(p) as Arc<dyn HostProvider>),
            cmdb::huawei::HuaweiBuilder::new().with_credentials(creds()).with_region(region.clone()).with_project_id("p").with_endpoint(base.clone()).with_http_config(http()).build().map(|p| Arc::new(p) as Arc<dyn HostProvider>),
        ];
        for provider in built {
            match provider {
                Ok(p) => { let _ = first_page(p, 403, b"{}".to_vec()); }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}

/// The API over an in-memory SQLite store, on the hostile server's runtime.
fn api() -> &'static String {
    static API: OnceLock<String> = OnceLock::new();
    API.get_or_init(|| {
        hostile().runtime.block_on(async {
            let store = Arc::new(
                cmdb::store_sql::SqlStore::connect("sqlite::memory:")
                    .await
                    .unwrap(),
            );
            let syncer = cmdb::sync::Syncer::new(
                store.clone(),
                store,
                Arc::new(cmdb::secret::Cipher::new(
                    cmdb::secret::Cipher::generate_key(),
                )),
                cmdb::sync::ProviderRegistry::with_builtin_providers(),
            )
            .with_options(cmdb::sync::SyncOptions::default().with_private_addresses(true));
            let router = cmdb::api::Api::new(Arc::new(syncer), "t").unwrap().router();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
            base
        })
    })
}

/// POSTs `body` to `path`; answers the status and the parsed answer.
fn post(path: &str, body: Vec<u8>) -> (u16, Value) {
    let url = format!("{}{path}", api());
    hostile().runtime.block_on(async move {
        let resp = reqwest::Client::new()
            .post(url)
            .bearer_auth("t")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

const SECRET_FIELDS: &[&str] = &[
    "vendor",
    "description",
    "api_key",
    "api_secret",
    "allowed_regions",
    "request_rate",
    "address",
    "unknown_field",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn api_json_bodies_are_answered_with_typed_errors(pick in any::<usize>(), value in any_json(), raw in prop::collection::vec(any::<u8>(), 0..64), use_raw in any::<bool>()) {
        let base = json!({"vendor": "aliyun", "description": "d", "api_key": "k", "api_secret": "s",
                          "allowed_regions": ["cn-hangzhou"], "address": "http://127.0.0.1:9"});
        let body = if use_raw { raw } else { mutate(base, SECRET_FIELDS, pick, value.clone()).to_string().into_bytes() };
        let (status, answer) = post("/secrets", body);
        prop_assert!(matches!(status, 201 | 400 | 409 | 413 | 415 | 422), "{status}: {answer}");
        if status != 201 {
            prop_assert!(answer["code"].is_string() && answer["message"].is_string(), "{answer}");
        }
        let sync = json!({"region": value, "details": "failed"}).to_string().into_bytes();
        let (status, answer) = post("/secrets/no-such-secret/sync", sync);
        prop_assert!(matches!(status, 400 | 404 | 422), "{status}: {answer}");
        prop_assert!(answer["code"].is_string(), "{answer}");
    }
}
