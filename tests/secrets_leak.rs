//! No secret leaks: a whole run over HTTP (the API in-process, four simulated clouds, a
//! failing sync of a secret with a session token, a wrong encryption key) with every log
//! at `trace` captured, then the SQLite file and a PostgreSQL dump searched for the
//! secrets and the session token in clear; and key rotation end to end.

mod common;

use std::sync::Arc;

use serde_json::{json, Value};

use cmdb::api::Api;
use cmdb::core::Vendor;
use cmdb::secret::{rotate_secrets, Cipher, NewSecret, SecretStore};
use cmdb::store_sql::SqlStore;
use cmdb::sync::{ProviderRegistry, SyncOptions, SyncRequest, Syncer};
use cmdb_testkit::aliyun::{self, SimulatedAliyun};
use cmdb_testkit::huawei::{self, SimulatedHuawei};
use cmdb_testkit::tencent::{self, SimulatedTencent};
use cmdb_testkit::vsphere::SimulatedVsphere;

use common::{add_secret, LogBuffer};

const TOKEN: &str = "leak-test-token-7f3a9c";
const WRONG_SECRET: &str = "wrong-aliyun-secret-but-still-secret-42";
/// The session token of temporary credentials: as secret as an API secret.
const SESSION_TOKEN: &str = "CAIS-sts-session-token-leak-5e1d0b";
/// The API secret a `PATCH /secrets/:id` sets.
const PATCHED_SECRET: &str = "patched-aliyun-secret-still-secret-77";

/// Standard base64 with padding (the dev-dependencies have no base64 crate).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An API server on a random local port; answers its base URL.
async fn serve(store: Arc<SqlStore>, cipher: Cipher) -> String {
    let syncer = Syncer::new(
        store.clone(),
        store,
        Arc::new(cipher),
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(SyncOptions::default().with_private_addresses(true));
    let router = Api::new(Arc::new(syncer), TOKEN).unwrap().router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: String,
    body: Option<Value>,
) -> (u16, String) {
    common::api_call(http, TOKEN, method, url, body).await
}

/// Asserts that none of `needles` appears in `haystack` (named `what`).
fn assert_absent(what: &str, haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            !haystack.contains(needle),
            "{what} contains the secret {:?}…",
            &needle[..needle.len().min(6)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_key_or_authorization_value_leaks_into_logs_answers_errors_or_the_database() {
    let logs = LogBuffer::default();
    // Everything at trace but the simulators' own server (not part of the product).
    tracing::subscriber::set_global_default(logs.subscriber("trace,wiremock=off"))
        .expect("the only subscriber of this test binary");

    let ali = SimulatedAliyun::start("cn-hangzhou", 120).await;
    let tc = SimulatedTencent::start(80).await;
    let hw = SimulatedHuawei::start("cn-north-4", 90).await;
    let vc = SimulatedVsphere::start(&[("dc-a", 30)]).await;

    let key = Cipher::generate_key();
    let key_b64 = base64(&key);
    assert_eq!(
        Cipher::from_base64(&key_b64).unwrap().active_key_id(),
        Cipher::new(key).active_key_id()
    );
    let path = common::sqlite_path("secrets_leak");
    let url = format!("sqlite://{}", path.display());
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let base = serve(store.clone(), Cipher::new(key)).await;
    let http = reqwest::Client::new();
    let mut answers = String::new();

    let clouds = [
        (
            "aliyun",
            aliyun::DEFAULT_ACCESS_KEY_ID,
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
            ali.uri(),
            "cn-hangzhou",
        ),
        (
            "tencent",
            tencent::SECRET_ID,
            tencent::SECRET_KEY,
            tc.uri(),
            tencent::REGION,
        ),
        (
            "huawei",
            huawei::ACCESS_KEY,
            huawei::SECRET_KEY,
            hw.uri(),
            "cn-north-4",
        ),
        (
            "vsphere",
            SimulatedVsphere::USER,
            SimulatedVsphere::PASSWORD,
            vc.uri(),
            "",
        ),
    ];
    // Temporary credentials that work: Tencent Cloud sends the token unsigned
    // (`X-TC-Token`), Huawei Cloud signed (`X-Security-Token`); neither may be logged.
    tc.set_session_token(Some(SESSION_TOKEN));
    hw.set_security_token(huawei::ACCESS_KEY, Some(SESSION_TOKEN));
    let mut ids = Vec::new();
    for (vendor, key_id, secret, address, region) in &clouds {
        let token = matches!(*vendor, "tencent" | "huawei").then_some(SESSION_TOKEN);
        let (status, text) = call(&http, "POST", format!("{base}/secrets"), Some(json!({
            "vendor": vendor, "description": format!("{vendor} leak test"), "api_key": key_id,
            "api_secret": secret, "allowed_regions": ["*"], "request_rate": 1000, "address": address,
            // The simulated vCenter listens on plain http on 127.0.0.1.
            "allow_insecure_http": *vendor == "vsphere", "session_token": token,
        }))).await;
        assert_eq!(status, 201, "{text}");
        answers.push_str(&text);
        let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, text) = call(
            &http,
            "POST",
            format!("{base}/secrets/{id}/sync"),
            Some(json!({"region": region, "details": "all"})),
        )
        .await;
        assert_eq!(status, 200, "{vendor}: {text}");
        assert!(text.contains("\"complete\":true"), "{vendor}: {text}");
        answers.push_str(&text);
        ids.push((id, region.to_string()));
    }

    // A failing sync: a wrong AccessKey secret, with a session token (the vendor answers
    // with a signature error that quotes its string to sign), and a revoked Huawei key.
    let (status, text) = call(
        &http,
        "POST",
        format!("{base}/secrets"),
        Some(json!({
            "vendor": "aliyun", "description": "wrong secret", "api_key": "LTAI5tWrongKey00042",
            "api_secret": WRONG_SECRET, "session_token": SESSION_TOKEN,
            "allowed_regions": ["*"], "address": ali.uri(),
        })),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    assert!(text.contains("\"session_token_set\":true"), "{text}");
    answers.push_str(&text);
    let wrong_id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ali.set_credentials("LTAI5tWrongKey00042", "the-secret-the-cloud-expects");
    let (status, text) = call(
        &http,
        "POST",
        format!("{base}/secrets/{wrong_id}/sync"),
        Some(json!({"region": "cn-hangzhou"})),
    )
    .await;
    assert!(status >= 400, "{text}");
    answers.push_str(&text);
    // The same in the background: the task's error.
    let (status, text) = call(
        &http,
        "POST",
        format!("{base}/secrets/{wrong_id}/sync?region=cn-hangzhou&wait=false"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{text}");
    answers.push_str(&text);
    let task_id = serde_json::from_str::<Value>(&text).unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut task = Value::Null;
    for _ in 0..1000 {
        let (status, text) = call(&http, "GET", format!("{base}/tasks/{task_id}"), None).await;
        assert_eq!(status, 200, "{text}");
        answers.push_str(&text);
        task = serde_json::from_str(&text).unwrap();
        if task["finished_at"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(task["state"], "failed", "{task}");
    // Changed: a new (still wrong) secret and the same token, sealed again; the answer is
    // masked.
    let (status, text) = call(
        &http,
        "PATCH",
        format!("{base}/secrets/{wrong_id}"),
        Some(json!({
            "api_secret": PATCHED_SECRET, "session_token": SESSION_TOKEN,
            "description": "patched",
        })),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    answers.push_str(&text);
    let (status, text) = call(
        &http,
        "POST",
        format!("{base}/secrets/{wrong_id}/sync"),
        Some(json!({"region": "cn-hangzhou"})),
    )
    .await;
    assert!(status >= 400, "{text}");
    answers.push_str(&text);
    // Refused session tokens: for vSphere, and with a line break.
    let (status, text) = call(
        &http,
        "POST",
        format!("{base}/secrets"),
        Some(json!({
            "vendor": "vsphere", "description": "no sts", "api_key": "sts@vsphere.local",
            "api_secret": WRONG_SECRET, "session_token": SESSION_TOKEN,
            "allowed_regions": ["*"], "address": vc.uri(), "allow_insecure_http": true,
        })),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("session_token"), "{text}");
    answers.push_str(&text);
    let (status, text) = call(
        &http,
        "POST",
        format!("{base}/secrets"),
        Some(json!({
            "vendor": "tencent", "description": "broken token", "api_key": "AKIDbrokenToken01",
            "api_secret": WRONG_SECRET, "session_token": format!("{SESSION_TOKEN}\r\nX: 1"),
            "allowed_regions": ["*"], "address": tc.uri(),
        })),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    answers.push_str(&text);
    hw.revoke_key(huawei::ACCESS_KEY);
    let (status, text) = call(
        &http,
        "POST",
        format!("{base}/secrets/{}/sync", ids[2].0),
        Some(json!({"region": "cn-north-4"})),
    )
    .await;
    // The vendor refused the key: a gateway error (401 is kept for this API's token).
    assert_eq!(status, 502, "{text}");
    assert!(
        text.contains("unauthenticated") && text.contains("APIGW.0301"),
        "{text}"
    );
    answers.push_str(&text);

    // Every read route.
    for path in [
        "/secrets".to_owned(),
        format!("/secrets/{}", ids[0].0),
        format!("/secrets/{wrong_id}"),
        "/hosts?page_size=100".to_owned(),
        "/tasks".to_owned(),
        "/openapi.json".to_owned(),
    ] {
        let (status, text) = call(&http, "GET", format!("{base}{path}"), None).await;
        assert_eq!(status, 200, "{path}: {text}");
        answers.push_str(&text);
    }

    // A server started with the wrong key: every sync is a crypto error.
    let wrong_key_base = serve(store.clone(), Cipher::new(Cipher::generate_key())).await;
    let (status, text) = call(
        &http,
        "POST",
        format!("{wrong_key_base}/secrets/{}/sync", ids[0].0),
        Some(json!({"region": "cn-hangzhou"})),
    )
    .await;
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("crypto"), "{text}");
    answers.push_str(&text);

    // The same errors from the library, as messages and Debug output.
    let wrong_syncer = Syncer::new(
        store.clone(),
        store.clone(),
        Arc::new(Cipher::new(Cipher::generate_key())),
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(SyncOptions::default().with_private_addresses(true));
    let e = wrong_syncer
        .sync(SyncRequest::new(&ids[1].0, tencent::REGION))
        .await
        .unwrap_err();
    answers.push_str(&format!("{e} {e:?}"));
    let syncer = Syncer::new(
        store.clone(),
        store.clone(),
        Arc::new(Cipher::new(key)),
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(SyncOptions::default().with_private_addresses(true));
    let e = syncer
        .sync(SyncRequest::new(&wrong_id, "cn-hangzhou"))
        .await
        .unwrap_err();
    answers.push_str(&format!("{e} {e:?} {syncer:?}"));
    let secret = store.get(&ids[0].0).await.unwrap();
    answers.push_str(&format!("{secret:?}"));
    let with_token = store.get(&wrong_id).await.unwrap();
    assert!(with_token.session_token.is_some());
    let credentials = Cipher::new(key).decrypt_credentials(&with_token).unwrap();
    assert_eq!(credentials.session_token(), Some(SESSION_TOKEN));
    answers.push_str(&format!(
        "{with_token:?} {with_token:#?} {credentials:?} {:?} {:?}",
        with_token.masked(),
        with_token.ciphertexts()
    ));

    let secrets = [
        aliyun::DEFAULT_ACCESS_KEY_SECRET,
        tencent::SECRET_KEY,
        huawei::SECRET_KEY,
        SimulatedVsphere::PASSWORD,
        WRONG_SECRET,
        PATCHED_SECRET,
        "the-secret-the-cloud-expects",
        SESSION_TOKEN,
    ];
    let mut forbidden: Vec<&str> = secrets.to_vec();
    forbidden.push(&key_b64);
    forbidden.push(TOKEN);
    // The vendors' Authorization values: their algorithm followed by the credential.
    let auth_values = [
        "ACS3-HMAC-SHA256 Credential=",
        "TC3-HMAC-SHA256 Credential=",
        "SDK-HMAC-SHA256 Access=",
        "Bearer ",
        "Signature=",
    ];
    forbidden.extend(auth_values);
    let logs = logs.text();
    assert!(logs.contains("TRACE"), "trace logs were captured");
    assert!(logs.len() > 1000, "logs were captured");
    assert_absent("the logs", &logs, &forbidden);
    assert_absent("the API answers and errors", &answers, &forbidden);

    // The SQLite file (and its WAL) hold no secret in clear.
    store.close().await;
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        if let Ok(b) = std::fs::read(&file) {
            bytes.extend(b);
        }
    }
    assert!(bytes.len() > 4096, "the database file was read");
    for s in secrets {
        assert!(
            !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
            "the SQLite file holds a secret in clear"
        );
    }
    let _ = std::fs::remove_file(&path);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_dump_holds_no_secret_in_clear() {
    let Some(url) = common::postgres_url("the PostgreSQL dump test") else {
        return;
    };
    let schema = common::unique("cmdb_leak").to_lowercase();
    let store = Arc::new(
        SqlStore::builder(url.clone())
            .schema(&schema)
            .connect()
            .await
            .unwrap(),
    );
    let cipher = Cipher::new(Cipher::generate_key());
    let ali = SimulatedAliyun::start("cn-hangzhou", 50).await;
    let secret = add_secret(
        &*store,
        &cipher,
        Vendor::Aliyun,
        aliyun::DEFAULT_ACCESS_KEY_ID,
        aliyun::DEFAULT_ACCESS_KEY_SECRET,
        ali.uri(),
    )
    .await;
    let sts = NewSecret::new(
        Vendor::Tencent,
        "AKIDstsLeakTest0001",
        "sts-leak-secret-value",
    )
    .with_session_token(SESSION_TOKEN)
    .with_description("temporary credentials")
    .with_allowed_regions(["*"])
    .seal(&cipher)
    .unwrap();
    store.create(&sts).await.unwrap();
    let vc = SimulatedVsphere::start(&[("dc", 5)]).await;
    add_secret(
        &*store,
        &cipher,
        Vendor::Vsphere,
        SimulatedVsphere::USER,
        SimulatedVsphere::PASSWORD,
        vc.uri(),
    )
    .await;
    let syncer = Syncer::new(
        store.clone(),
        store.clone(),
        Arc::new(cipher),
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(SyncOptions::default().with_private_addresses(true));
    assert!(
        syncer
            .sync(SyncRequest::new(&secret.id, "cn-hangzhou"))
            .await
            .unwrap()
            .complete
    );

    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(&schema)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "cmdb_secrets"), "{tables:?}");
    let mut dump = String::new();
    for table in &tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM {schema}.{table} t"
        ))
        .fetch_all(&admin)
        .await
        .unwrap();
        dump.push_str(&rows.join("\n"));
    }
    assert!(
        dump.contains(aliyun::DEFAULT_ACCESS_KEY_ID) && dump.contains(&sts.api_key),
        "the dump holds the secrets' rows"
    );
    assert!(
        dump.contains(sts.session_token.as_deref().unwrap()),
        "the dump holds the session token's ciphertext"
    );
    assert_absent(
        "the PostgreSQL dump",
        &dump,
        &[
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
            SimulatedVsphere::PASSWORD,
            "sts-leak-secret-value",
            SESSION_TOKEN,
        ],
    );
    store.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_every_secret_usable_after_the_old_key_is_removed() {
    let ali = SimulatedAliyun::start("cn-hangzhou", 40).await;
    let tc = SimulatedTencent::start(30).await;
    let hw = SimulatedHuawei::start("cn-north-4", 20).await;
    let vc = SimulatedVsphere::start(&[("dc", 10)]).await;
    let store = Arc::new(SqlStore::connect("sqlite::memory:").await.unwrap());
    let (key1, key2) = (Cipher::generate_key(), Cipher::generate_key());
    let cipher1 = Cipher::new(key1);
    let secrets = [
        (
            add_secret(
                &*store,
                &cipher1,
                Vendor::Aliyun,
                aliyun::DEFAULT_ACCESS_KEY_ID,
                aliyun::DEFAULT_ACCESS_KEY_SECRET,
                ali.uri(),
            )
            .await,
            "cn-hangzhou",
            40,
        ),
        (
            add_secret(
                &*store,
                &cipher1,
                Vendor::Tencent,
                tencent::SECRET_ID,
                tencent::SECRET_KEY,
                tc.uri(),
            )
            .await,
            tencent::REGION,
            30,
        ),
        (
            add_secret(
                &*store,
                &cipher1,
                Vendor::Huawei,
                huawei::ACCESS_KEY,
                huawei::SECRET_KEY,
                hw.uri(),
            )
            .await,
            "cn-north-4",
            20,
        ),
        (
            add_secret(
                &*store,
                &cipher1,
                Vendor::Vsphere,
                SimulatedVsphere::USER,
                SimulatedVsphere::PASSWORD,
                vc.uri(),
            )
            .await,
            "",
            10,
        ),
    ];

    // Key 2 active, key 1 still accepted for decryption: rotate.
    let both = Cipher::new(key2).with_decryption_key(key1);
    let report = rotate_secrets(&*store, &both).await.unwrap();
    assert_eq!((report.rotated, report.already_current), (4, 0));
    let again = rotate_secrets(&*store, &both).await.unwrap();
    assert_eq!((again.rotated, again.already_current), (0, 4), "idempotent");

    // Key 1 removed: every secret decrypts under key 2 alone, and not under key 1.
    let only2 = Arc::new(Cipher::new(key2));
    for (secret, _, _) in &secrets {
        let stored = store.get(&secret.id).await.unwrap();
        assert_eq!(
            Cipher::key_id_of(&stored.api_secret),
            Some(only2.active_key_id())
        );
        only2
            .decrypt_credentials(&stored)
            .expect("decrypts under key 2");
        assert!(Cipher::new(key1).decrypt_credentials(&stored).is_err());
    }
    let syncer = Syncer::new(
        store.clone(),
        store.clone(),
        only2,
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(SyncOptions::default().with_private_addresses(true));
    for (secret, region, hosts) in &secrets {
        let r = syncer
            .sync(SyncRequest::new(&secret.id, *region))
            .await
            .unwrap();
        assert!(r.complete, "{}: {:?}", secret.vendor, r.error);
        assert_eq!(r.created, *hosts, "{}", secret.vendor);
    }
}
