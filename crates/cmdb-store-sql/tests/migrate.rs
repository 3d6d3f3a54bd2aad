//! Migrations: a database the earlier migration runner left at version 4 is adopted and
//! converted in place, row for row; older ones are refused; concurrent connects agree.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use cmdb_core::{
    ErrorKind, Host, HostQuery, HostSort, HostStatus, HostStore, MissingHost, OsType, PayMode,
    StoredHost, SyncScope, UpsertOutcome, Vendor,
};
use cmdb_secret::{Cipher, NewSecret, Secret, SecretStore};
use cmdb_store_sql::{SchemaError, SqlStore, SCHEMA_VERSION};

/// Nanoseconds since the epoch, as the earlier runner's schema kept bookkeeping times.
fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap()
}

/// The time `n` nanoseconds after the epoch, cut to the microsecond.
fn micros(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(n / 1000).unwrap()
}

/// SQL text of `s`, quoted.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn opt(s: Option<&str>) -> String {
    s.map_or("NULL".to_owned(), q)
}

/// A host with every field set, one with times that have nanoseconds, one with nothing
/// optional.
fn old_hosts() -> Vec<Host> {
    let mut full = Host::new(Vendor::Aliyun, "i-full", "cn-hangzhou");
    full.secret_id = "old-secret".into();
    full.zone = Some("cn-hangzhou-h".into());
    full.name = "Web-01 'quoted'".into();
    full.description = Some("line one\nline two".into());
    full.hostname = Some("web-01".into());
    full.status = HostStatus::Running;
    full.raw_status = "Running".into();
    full.instance_type = Some("ecs.g6.large".into());
    full.cpu = Some(2);
    full.memory_mib = Some(8192);
    full.gpu_count = Some(1);
    full.gpu_spec = Some("NVIDIA T4".into());
    full.os_type = OsType::Linux;
    full.os_name = Some("Alibaba Cloud Linux 3".into());
    full.image_id = Some("aliyun_3_x64".into());
    full.public_ips = vec!["47.96.1.2".into()];
    full.private_ips = vec!["10.0.0.7".into(), "10.0.0.8".into()];
    full.pay_mode = PayMode::Prepaid;
    full.created_at = Some(Utc.with_ymd_and_hms(2024, 3, 1, 8, 15, 0).unwrap());
    full.expire_at = Some(Utc.with_ymd_and_hms(2027, 1, 2, 3, 4, 5).unwrap());
    full.tags.insert("env".into(), "prod".into());
    full.tags.insert("owner".into(), "ops team".into());
    full.vpc_id = Some("vpc-1".into());
    full.security_groups = vec!["sg-1".into(), "sg-2".into()];
    full.key_pairs = vec!["kp-1".into()];
    full.serial_number = Some("SN-1".into());
    full.extra.insert(
        "nested".into(),
        serde_json::json!({"b": [1, 2.5, null], "a": true}),
    );

    let mut fine = Host::new(Vendor::Aliyun, "i-fine-times", "cn-hangzhou");
    fine.secret_id = "old-secret".into();
    fine.name = "fine".into();
    fine.status = HostStatus::Stopped;
    fine.created_at = Some(
        Utc.with_ymd_and_hms(2025, 5, 6, 7, 8, 9).unwrap() + chrono::Duration::nanoseconds(123_456),
    );
    fine.expire_at = Some(
        Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(987_654_321),
    );

    let mut bare = Host::new(Vendor::Tencent, "ins-bare", "ap-guangzhou");
    bare.secret_id = "other-secret".into();
    vec![full, fine, bare]
}

/// The bookkeeping times of each old host: first seen, last seen, released, missed.
fn old_times(i: usize) -> (i64, i64, Option<i64>, Option<i64>) {
    let base = nanos(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
    match i {
        0 => (base + 123_456_789, base + 86_400_000_000_789, None, None),
        1 => (
            base,
            base + 1_000,
            Some(base + 2_000_999),
            Some(base + 1_500_000),
        ),
        _ => (base, base, None, Some(base + 5)),
    }
}

/// The INSERT of `host` as the earlier store wrote it: JSON text, RFC 3339 text, nanos.
fn old_insert(host: &Host, times: (i64, i64, Option<i64>, Option<i64>)) -> String {
    let json = |v: &dyn erased::Json| q(&v.json());
    let rfc = |t: Option<DateTime<Utc>>| {
        opt(t
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .as_deref())
    };
    let int = |v: Option<i64>| v.map_or("NULL".to_owned(), |v| v.to_string());
    let ips: Vec<&str> = host
        .public_ips
        .iter()
        .chain(&host.private_ips)
        .map(String::as_str)
        .collect();
    format!(
        "INSERT INTO cmdb_hosts (vendor, instance_id, secret_id, region, zone, name, name_lc, \
         description, hostname, status, raw_status, instance_type, cpu, memory_mib, gpu_count, \
         gpu_spec, os_type, os_name, image_id, public_ips, private_ips, ip_search, pay_mode, \
         created_at, expire_at, tags, vpc_id, security_groups, key_pairs, serial_number, extra, \
         content_hash, first_seen_at, last_seen_at, released_at, missed_at) VALUES ({}, {}, {}, \
         {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, \
         {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
        q(host.vendor.as_str()),
        q(&host.instance_id),
        q(&host.secret_id),
        q(&host.region),
        opt(host.zone.as_deref()),
        q(&host.name),
        q(&host.name.to_lowercase()),
        opt(host.description.as_deref()),
        opt(host.hostname.as_deref()),
        q(host.status.as_str()),
        q(&host.raw_status),
        opt(host.instance_type.as_deref()),
        int(host.cpu.map(i64::from)),
        int(host.memory_mib.map(|m| m as i64)),
        int(host.gpu_count.map(i64::from)),
        opt(host.gpu_spec.as_deref()),
        q(host.os_type.as_str()),
        opt(host.os_name.as_deref()),
        opt(host.image_id.as_deref()),
        json(&host.public_ips),
        json(&host.private_ips),
        q(&ips.join("\n")),
        q(host.pay_mode.as_str()),
        rfc(host.created_at),
        rfc(host.expire_at),
        json(&host.tags),
        opt(host.vpc_id.as_deref()),
        json(&host.security_groups),
        json(&host.key_pairs),
        opt(host.serial_number.as_deref()),
        json(&host.extra),
        q(&host.content_hash()),
        times.0,
        times.1,
        int(times.2),
        int(times.3),
    )
}

mod erased {
    /// A value written as JSON, whatever its type.
    pub(crate) trait Json {
        fn json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap()
        }
    }
}

/// A secret as the earlier store wrote it (created_at in nanoseconds).
fn old_secret() -> (Secret, String) {
    let created = nanos(Utc.with_ymd_and_hms(2026, 10, 1, 2, 3, 4).unwrap()) + 5_006_007;
    let mut secret = Secret::from_stored(
        "old-secret",
        Vendor::Aliyun,
        "LTAI5tOldKey0001",
        "v2:opaque-ciphertext",
        micros(created),
    );
    secret.description = "kept across the upgrade".into();
    secret.allowed_regions = vec!["cn-hangzhou".into(), "cn-beijing".into()];
    secret.request_rate = 7;
    secret.address = Some("https://ecs.example.com".into());
    secret.tls_ca_pem =
        Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into());
    secret.tls_skip_verify = true;
    let insert = format!(
        "INSERT INTO cmdb_secrets (id, vendor, description, api_key, api_secret, \
         allowed_regions, request_rate, address, created_at, id_lc, description_lc, api_key_lc, \
         allow_insecure_http, tls_ca_pem, tls_skip_verify) VALUES ({}, 'aliyun', {}, {}, {}, {}, \
         7, {}, {created}, {}, {}, {}, 0, {}, 1)",
        q(&secret.id),
        q(&secret.description),
        q(&secret.api_key),
        q(&secret.api_secret),
        q(&serde_json::to_string(&secret.allowed_regions).unwrap()),
        opt(secret.address.as_deref()),
        q(&secret.id),
        q(&secret.description),
        q(&cmdb_secret::mask_api_key(&secret.api_key).to_ascii_lowercase()),
        opt(secret.tls_ca_pem.as_deref()),
    );
    (secret, insert)
}

/// A database of the earlier runner at version 4, with hosts, a secret and a lock row.
async fn create_old_database(raw: &common::Raw) {
    raw.create_old_runner_schema(4).await;
    let mut inserts: Vec<String> = old_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| old_insert(h, old_times(i)))
        .collect();
    inserts.push(old_secret().1);
    inserts.push(format!(
        "INSERT INTO cmdb_scope_locks (scope_key, scope, owner_pid, owner_start, owner_token, \
         acquired_at, expires_at, owner_host, owner_boot) VALUES ('00ff', 'a scope', 42, 7, \
         'token', {}, {}, 'h', 'b')",
        old_times(0).0,
        old_times(0).1
    ));
    raw.execute_in_schema(&inserts.join(";\n")).await;
}

/// What the old rows read back as: the same hosts, times cut to the microsecond.
fn expected_hosts() -> Vec<StoredHost> {
    old_hosts()
        .into_iter()
        .enumerate()
        .map(|(i, host)| {
            let (first, last, released, _) = old_times(i);
            let hash = host.content_hash();
            let mut host = host;
            let cut = |t: Option<DateTime<Utc>>| t.map(|t| micros(nanos(t)));
            host.created_at = cut(host.created_at);
            host.expire_at = cut(host.expire_at);
            StoredHost::new(host, hash, micros(first), micros(last))
                .with_released_at(released.map(micros))
        })
        .collect()
}

async fn assert_old_rows_kept(label: &str, store: &SqlStore) {
    for want in expected_hosts() {
        let got = HostStore::get(store, want.host.vendor, &want.host.instance_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{label}: {} is kept", want.host.instance_id));
        assert_eq!(got, want, "{label}");
    }
    let scope = SyncScope::hosts("old-secret", Vendor::Aliyun, "cn-hangzhou");
    let missing = store
        .missing(
            &scope,
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        missing,
        vec![MissingHost::new("i-full", None)],
        "{label}: the released host is not missing"
    );
    let other = SyncScope::hosts("other-secret", Vendor::Tencent, "ap-guangzhou");
    let missing = store
        .missing(
            &other,
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(missing[0].missed_at, Some(micros(old_times(2).3.unwrap())));
    let (secret, _) = old_secret();
    let got = SecretStore::get(store, &secret.id).await.unwrap();
    assert_eq!(got, secret, "{label}: the secret is kept");
    // Sorting and filtering on the converted columns.
    let recent = store
        .query(
            &HostQuery::default()
                .with_sort(HostSort::LastSeenDesc)
                .with_released(false),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = recent
        .items
        .iter()
        .map(|h| h.host.instance_id.as_str())
        .collect();
    assert_eq!(ids, ["i-full", "ins-bare"], "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_earlier_runner_at_version_4_is_converted_row_for_row() {
    for raw in common::raw_backends("adopt") {
        let label = raw.label;
        create_old_database(&raw).await;

        let store = raw.builder.clone().connect().await.expect("upgrade");
        assert_eq!(
            store.schema_version().await.unwrap(),
            SCHEMA_VERSION,
            "{label}"
        );
        assert_old_rows_kept(label, &store).await;

        // The lock row's times, to the microsecond, as text in the one format.
        let mut conn = raw.connect().await;
        let (acquired, expires) = match label {
            "postgres" => (
                "to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                "to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
            ),
            "mysql" => (
                "DATE_FORMAT(acquired_at, '%Y-%m-%dT%H:%i:%s.%fZ')",
                "DATE_FORMAT(expires_at, '%Y-%m-%dT%H:%i:%s.%fZ')",
            ),
            _ => ("acquired_at", "expires_at"),
        };
        let row = sqlx::raw_sql(&format!(
            "SELECT {acquired}, {expires}, owner_pid FROM cmdb_scope_locks"
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let text = |i| -> String {
            sqlx::Row::try_get::<String, _>(&row, i).unwrap_or_else(|_| {
                String::from_utf8(sqlx::Row::get::<Vec<u8>, _>(&row, i)).unwrap()
            })
        };
        let format = |n| micros(n).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        assert_eq!(text(0), format(old_times(0).0), "{label}");
        assert_eq!(text(1), format(old_times(0).1), "{label}");
        // The earlier runner's table is gone: an older build fails its own migrations
        // instead of writing integers into these columns.
        let gone = sqlx::raw_sql("SELECT COUNT(*) FROM cmdb_schema_migrations")
            .fetch_one(&mut conn)
            .await;
        assert!(gone.is_err(), "{label}: the old version table is dropped");
        sqlx::Connection::close(conn).await.unwrap();
        store.close().await;

        // Connecting again changes nothing; the stored hashes still match.
        let again = raw.builder.clone().connect().await.expect("connect twice");
        assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert_old_rows_kept(label, &again).await;
        let scope = SyncScope::hosts("old-secret", Vendor::Aliyun, "cn-hangzhou");
        let out = again
            .upsert(
                &scope,
                &old_hosts()[..1],
                Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(out, vec![UpsertOutcome::Unchanged], "{label}");
        // The converted lock table takes locks.
        let lease = again.try_lock_scope(&scope).await.unwrap();
        assert!(lease.is_some(), "{label}");
        drop(lease);
        again.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_to_an_old_database_convert_it_once() {
    for raw in common::raw_backends("adopt_race") {
        let label = raw.label;
        create_old_database(&raw).await;
        let connects: Vec<_> = (0..4)
            .map(|_| tokio::spawn(raw.builder.clone().connect()))
            .collect();
        let mut stores = Vec::new();
        for connect in connects {
            let store = connect
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            stores.push(store);
        }
        for store in &stores {
            assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        }
        assert_old_rows_kept(label, &stores[0]).await;
        for store in stores {
            store.close().await;
        }

        // And a new database, created by several connects at once.
        let fresh: Vec<_> = common::builders("fresh_race")
            .into_iter()
            .filter(|(l, _)| *l == label)
            .flat_map(|(_, b)| (0..4).map(move |_| tokio::spawn(b.clone().connect())))
            .collect();
        for connect in fresh {
            let store = connect
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
            store.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_earlier_runner_before_version_4_is_refused() {
    for raw in common::raw_backends("too_old") {
        let label = raw.label;
        raw.create_old_runner_schema(3).await;
        let e = raw
            .builder
            .clone()
            .connect()
            .await
            .expect_err("version 3 is not adopted");
        assert_eq!(e.kind(), ErrorKind::Store, "{label}: {e}");
        let source = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<SchemaError>())
            .unwrap_or_else(|| panic!("{label}: a schema error: {e:?}"));
        assert_eq!(*source, SchemaError::TooOld { found: 3 }, "{label}");
        assert!(e.message().contains("version 3"), "{label}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_migrated_by_a_newer_build_is_refused() {
    for raw in common::raw_backends("too_new") {
        let label = raw.label;
        let store = raw.builder.clone().connect().await.unwrap();
        store.close().await;
        raw.execute_in_schema(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) SELECT 99, 'from the future', success, checksum, 0 \
             FROM _sqlx_migrations WHERE version = 5",
        )
        .await;
        let e = raw
            .builder
            .clone()
            .connect()
            .await
            .expect_err("unknown version");
        let source = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<SchemaError>());
        assert_eq!(
            source,
            Some(&SchemaError::TooNew { found: 99 }),
            "{label}: {e}"
        );
    }
}

/// `connect_at(4)` builds the schema of version 4 only; connecting then converts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_version_4_of_these_migrations_is_upgraded() {
    for raw in common::raw_backends("at4") {
        let label = raw.label;
        let old = raw.builder.clone().connect_at(4).await.expect("version 4");
        assert_eq!(old.schema_version().await.unwrap(), 4, "{label}");
        old.close().await;
        let inserts: Vec<String> = old_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| old_insert(h, old_times(i)))
            .chain([old_secret().1])
            .collect();
        raw.execute_in_schema(&inserts.join(";\n")).await;
        let store = raw.builder.clone().connect().await.expect("upgrade");
        assert_eq!(
            store.schema_version().await.unwrap(),
            SCHEMA_VERSION,
            "{label}"
        );
        assert_old_rows_kept(label, &store).await;
    }
}

/// `connect_at(5)` builds the schema before session tokens; connecting then adds the
/// column: a secret stored at version 5 reads back without a token and still decrypts,
/// and a secret with one is stored and read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_version_5_gains_session_tokens_and_keeps_its_secrets() {
    for raw in common::raw_backends("at5") {
        let label = raw.label;
        let cipher = Cipher::new(Cipher::generate_key());
        let old = raw.builder.clone().connect_at(5).await.expect("version 5");
        assert_eq!(old.schema_version().await.unwrap(), 5, "{label}");
        old.close().await;

        let before = NewSecret::new(Vendor::Tencent, "AKIDversion5secret", "sk-version-5")
            .with_description("stored at version 5")
            .with_allowed_regions(["ap-guangzhou"])
            .seal(&cipher)
            .unwrap();
        let created = match label {
            "mysql" => before.created_at.format("%Y-%m-%d %H:%M:%S%.6f"),
            _ => before.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        };
        raw.execute_in_schema(&format!(
            "INSERT INTO cmdb_secrets (id, vendor, description, api_key, api_secret, \
             allowed_regions, request_rate, address, created_at, id_lc, description_lc, \
             api_key_lc, allow_insecure_http, tls_ca_pem, tls_skip_verify) VALUES ({}, \
             'tencent', {}, {}, {}, '[\"ap-guangzhou\"]', 5, NULL, '{created}', {}, {}, {}, 0, \
             NULL, 0)",
            q(&before.id),
            q(&before.description),
            q(&before.api_key),
            q(&before.api_secret),
            q(&before.id),
            q(&before.description.to_ascii_lowercase()),
            q(&cmdb_secret::mask_api_key(&before.api_key).to_ascii_lowercase()),
        ))
        .await;

        let store = raw.builder.clone().connect().await.expect("upgrade");
        assert_eq!(
            store.schema_version().await.unwrap(),
            SCHEMA_VERSION,
            "{label}"
        );
        let got = SecretStore::get(&store, &before.id).await.unwrap();
        assert_eq!(got, before, "{label}: the secret is kept");
        assert_eq!(got.session_token, None, "{label}");
        let creds = cipher.decrypt_credentials(&got).unwrap();
        assert_eq!(
            (creds.api_secret(), creds.session_token()),
            ("sk-version-5", None),
            "{label}"
        );

        let sts = NewSecret::new(Vendor::Aliyun, "STS.version6secret", "sk-version-6")
            .with_session_token("CAIS-version-6-token")
            .with_description("stored at version 6")
            .with_allowed_regions(["*"])
            .seal(&cipher)
            .unwrap();
        store.create(&sts).await.unwrap();
        let got = SecretStore::get(&store, &sts.id).await.unwrap();
        assert_eq!(got, sts, "{label}");
        let creds = cipher.decrypt_credentials(&got).unwrap();
        assert_eq!(
            creds.session_token(),
            Some("CAIS-version-6-token"),
            "{label}"
        );
        store.close().await;
    }
}

/// `connect_at(6)` builds the schema before sync runs; connecting then adds their table
/// and the schedules (version 8): the hosts and secrets stored at version 6 are kept,
/// runs are stored and listed, schedules stored and found due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_version_6_gains_sync_runs_and_schedules_and_keeps_its_rows() {
    use cmdb_core::{RunQuery, RunState, RunStore, RunTrigger, SyncRun};

    for raw in common::raw_backends("at6") {
        let label = raw.label;
        let cipher = Cipher::new(Cipher::generate_key());
        let old = raw.builder.clone().connect_at(6).await.expect("version 6");
        assert_eq!(old.schema_version().await.unwrap(), 6, "{label}");
        let secret = NewSecret::new(Vendor::Huawei, "HWversion6secret", "sk-version-6")
            .with_session_token("token-version-6")
            .with_description("stored at version 6")
            .with_allowed_regions(["cn-north-4"])
            .seal(&cipher)
            .unwrap();
        // As version 6 wrote it: no schedule columns.
        let created = match label {
            "mysql" => secret.created_at.format("%Y-%m-%d %H:%M:%S%.6f"),
            _ => secret.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        };
        raw.execute_in_schema(&format!(
            "INSERT INTO cmdb_secrets (id, vendor, description, api_key, api_secret, \
             allowed_regions, request_rate, address, created_at, id_lc, description_lc, \
             api_key_lc, allow_insecure_http, tls_ca_pem, tls_skip_verify, session_token) \
             VALUES ({}, 'huawei', {}, {}, {}, '[\"cn-north-4\"]', 5, NULL, '{created}', {}, \
             {}, {}, 0, NULL, 0, {})",
            q(&secret.id),
            q(&secret.description),
            q(&secret.api_key),
            q(&secret.api_secret),
            q(&secret.id),
            q(&secret.description.to_ascii_lowercase()),
            q(&cmdb_secret::mask_api_key(&secret.api_key).to_ascii_lowercase()),
            q(secret.session_token.as_deref().unwrap()),
        ))
        .await;
        let scope = SyncScope::hosts(secret.id.clone(), Vendor::Huawei, "cn-north-4");
        let mut host = Host::new(Vendor::Huawei, "ecs-version-6", "cn-north-4");
        host.name = "kept".into();
        let seen = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        old.upsert(&scope, &[host], seen).await.unwrap();
        old.close().await;

        let store = raw.builder.clone().connect().await.expect("upgrade");
        assert_eq!(
            store.schema_version().await.unwrap(),
            SCHEMA_VERSION,
            "{label}"
        );
        let got = SecretStore::get(&store, &secret.id).await.unwrap();
        assert_eq!(got, secret, "{label}: the secret is kept");
        assert_eq!(
            (got.sync_interval, got.next_sync_at, got.sync_failures),
            (None, None, 0),
            "{label}: no schedule"
        );
        // Version 8: a schedule is stored, due at once.
        let every: cmdb_secret::SyncInterval = "10m".parse().unwrap();
        let scheduled = got
            .patched(
                cmdb_secret::SecretPatch::default().with_sync_interval(Some(every)),
                &cipher,
            )
            .unwrap();
        store.update(&scheduled, &got.ciphertexts()).await.unwrap();
        let due = store
            .due_syncs(Utc::now() + chrono::Duration::seconds(1), 100)
            .await
            .unwrap();
        assert!(
            due.iter()
                .any(|d| d.secret_id == secret.id && d.interval == every),
            "{label}: {due:?}"
        );
        let kept = HostStore::get(&store, Vendor::Huawei, "ecs-version-6")
            .await
            .unwrap()
            .expect("the host is kept");
        assert_eq!(kept.last_seen_at, seen, "{label}");

        let run = SyncRun::new("run-version-7", &scope, RunTrigger::Api, seen)
            .with_state(RunState::Running)
            .with_started_at(Some(seen))
            .with_runner(Some("replica-a:1234".into()));
        store.insert_run(&run).await.unwrap();
        let listed = store
            .list_runs(&RunQuery::default().with_secret_id(secret.id.clone()))
            .await
            .unwrap();
        assert_eq!(listed.total, 1, "{label}");
        assert_eq!(listed.items, vec![run], "{label}");
        store.close().await;
    }
}

/// The type of `column` of `cmdb_databases` as the database names it: the declared type
/// on SQLite, the `information_schema` data type elsewhere.
async fn database_column_type(raw: &common::Raw, column: &str) -> String {
    use sqlx::Row as _;
    let query = match raw.label {
        "postgres" => format!(
            "SELECT CAST(data_type AS TEXT) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'cmdb_databases' \
             AND column_name = '{column}'"
        ),
        "mysql" => format!(
            "SELECT CAST(DATA_TYPE AS CHAR) FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = 'cmdb_databases' \
             AND column_name = '{column}'"
        ),
        _ => {
            format!("SELECT type FROM pragma_table_info('cmdb_databases') WHERE name = '{column}'")
        }
    };
    let mut conn = raw.connect().await;
    let row = sqlx::query(&query)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    let kind = row
        .try_get::<String, _>(0)
        .or_else(|_| {
            row.try_get::<Vec<u8>, _>(0)
                .map(|b| String::from_utf8(b).unwrap())
        })
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    kind.to_lowercase()
}

/// `connect_at(8)` builds the schema before database instances; connecting then adds
/// their table (version 9), with native types: the hosts, secrets and runs stored at
/// version 8 are kept, and database instances are stored, listed and released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_version_8_gains_database_instances_and_keeps_its_rows() {
    use cmdb_core::{
        Database, DatabaseEndpoint, DatabaseEngine, DatabaseQuery, DatabaseStatus, DatabaseStore,
        RunState, RunStore, RunTrigger, SyncRun,
    };

    for raw in common::raw_backends("at8") {
        let label = raw.label;
        let cipher = Cipher::new(Cipher::generate_key());
        let old = raw.builder.clone().connect_at(8).await.expect("version 8");
        assert_eq!(old.schema_version().await.unwrap(), 8, "{label}");
        let secret = NewSecret::new(Vendor::Aliyun, "LTAIversion8secret", "sk-version-8")
            .with_description("stored at version 8")
            .with_allowed_regions(["cn-hangzhou"])
            .seal(&cipher)
            .unwrap();
        old.create(&secret).await.unwrap();
        let hosts = SyncScope::hosts(secret.id.clone(), Vendor::Aliyun, "cn-hangzhou");
        let mut host = Host::new(Vendor::Aliyun, "i-version-8", "cn-hangzhou");
        host.name = "kept".into();
        let seen = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        HostStore::upsert(&old, &hosts, &[host], seen)
            .await
            .unwrap();
        let run = SyncRun::new("run-version-8", &hosts, RunTrigger::Api, seen)
            .with_state(RunState::Succeeded)
            .with_finished_at(Some(seen));
        old.insert_run(&run).await.unwrap();
        old.close().await;

        let store = raw.builder.clone().connect().await.expect("upgrade");
        assert_eq!(store.schema_version().await.unwrap(), 9, "{label}");
        assert_eq!(SCHEMA_VERSION, 9);
        assert_eq!(
            SecretStore::get(&store, &secret.id).await.unwrap(),
            secret,
            "{label}: the secret is kept"
        );
        let kept = HostStore::get(&store, Vendor::Aliyun, "i-version-8")
            .await
            .unwrap()
            .expect("the host is kept");
        assert_eq!((kept.host.name.as_str(), kept.last_seen_at), ("kept", seen));
        assert_eq!(
            store.get_run("run-version-8").await.unwrap(),
            Some(run),
            "{label}: the run is kept"
        );

        let scope = SyncScope::databases(secret.id.clone(), Vendor::Aliyun, "cn-hangzhou");
        let db = Database::new(Vendor::Aliyun, "rm-version-9", "cn-hangzhou")
            .with_name("Orders")
            .with_engine(DatabaseEngine::MySql, Some("8.0"))
            .with_status(DatabaseStatus::Running, "Running")
            .with_endpoint(DatabaseEndpoint::private(
                "rm-version-9.mysql.rds",
                Some(3306),
            ))
            .with_created_at(seen - chrono::Duration::microseconds(1_500_001))
            .with_tag("env", "prod");
        let out = DatabaseStore::upsert(&store, &scope, std::slice::from_ref(&db), seen)
            .await
            .unwrap();
        assert_eq!(out, vec![UpsertOutcome::Created], "{label}");
        let got = DatabaseStore::get(&store, Vendor::Aliyun, "rm-version-9")
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(
            got.database,
            db.with_secret_id(secret.id.clone()),
            "{label}"
        );
        let listed =
            DatabaseStore::query(&store, &DatabaseQuery::default().with_keywords("orders"))
                .await
                .unwrap();
        assert_eq!(listed.total, 1, "{label}");
        let later = seen + chrono::Duration::seconds(1);
        let released =
            DatabaseStore::release(&store, &scope, &["rm-version-9".to_owned()], later, later)
                .await
                .unwrap();
        assert_eq!(released, 1, "{label}");
        assert_eq!(
            HostStore::scope_stats(&store, &hosts, later)
                .await
                .unwrap()
                .active,
            1,
            "{label}: releasing an instance leaves the hosts alone"
        );
        store.close().await;

        // Native types, as cmdb_hosts has them.
        let expected = match label {
            "postgres" => [
                ("last_seen_at", "timestamp with time zone"),
                ("endpoints", "jsonb"),
                ("tags", "jsonb"),
            ],
            "mysql" => [
                ("last_seen_at", "datetime"),
                ("endpoints", "json"),
                ("tags", "json"),
            ],
            _ => [
                ("last_seen_at", "text"),
                ("endpoints", "text"),
                ("tags", "text"),
            ],
        };
        for (column, kind) in expected {
            let found = database_column_type(&raw, column).await;
            // MariaDB's JSON is LONGTEXT with a JSON check.
            let mariadb_json = kind == "json" && found == "longtext";
            assert!(
                found == kind || mariadb_json,
                "{label}: {column} is {found}"
            );
        }
    }
}
