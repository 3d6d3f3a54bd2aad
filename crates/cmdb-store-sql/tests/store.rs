//! Behaviour of the SQL stores beyond the conformance suites, on every backend available.

mod common;

use std::sync::Arc;
use std::task::Poll;

use chrono::{TimeZone, Utc};
use cmdb_core::{
    ErrorKind, Host, HostProvider, HostQuery, HostStatus, HostStore, SyncScope, UpsertOutcome,
    Vendor,
};
use cmdb_secret::{Cipher, NewSecret, SecretStore};
use cmdb_store_sql::{SqlStore, SCHEMA_VERSION};
use cmdb_sync::{ProviderContext, ProviderRegistry, SyncRequest, Syncer};
use cmdb_testkit::FakeProvider;

fn at(seconds: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

fn hosts(scope: &SyncScope, n: usize, status: HostStatus) -> Vec<Host> {
    (0..n)
        .map(|i| {
            let mut h = Host::new(
                scope.vendor,
                format!("{}-{i:05}", scope.secret_id),
                &scope.region,
            );
            h.name = format!("host-{i}");
            h.status = status;
            h.private_ips = vec![format!("10.1.{}.{}", i / 250, i % 250)];
            h
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_lock_excludes_other_pools_until_dropped() {
    for (label, builder) in common::builders("lock") {
        let a = builder.clone().connect().await.unwrap();
        let b = builder.clone().connect().await.unwrap();
        let scope = SyncScope::hosts(common::unique("lock"), Vendor::Tencent, "ap-guangzhou");
        let other = SyncScope::hosts(common::unique("lock"), Vendor::Tencent, "ap-guangzhou");

        let lease = a.try_lock_scope(&scope).await.unwrap().expect("first lock");
        assert!(
            b.try_lock_scope(&scope).await.unwrap().is_none(),
            "{label}: a second pool must not get a held scope"
        );
        assert!(
            a.try_lock_scope(&scope).await.unwrap().is_none(),
            "{label}: nor the same pool"
        );
        let other_lease = b.try_lock_scope(&other).await.unwrap();
        assert!(other_lease.is_some(), "{label}: other scopes are free");

        // Asked without taking it: held, as every pool sees; SQLite cannot tell.
        let seen = b.is_scope_locked(&scope).await.unwrap();
        let expected = |held: bool| (!label.starts_with("sqlite")).then_some(held);
        assert_eq!(
            seen,
            expected(true),
            "{label}: held, seen from another pool"
        );
        assert_eq!(
            a.is_scope_locked(&scope).await.unwrap(),
            expected(true),
            "{label}"
        );

        drop(lease);
        assert_eq!(
            a.is_scope_locked(&scope).await.unwrap(),
            expected(false),
            "{label}: free once the lease is dropped"
        );
        let again = b.try_lock_scope(&scope).await.unwrap();
        assert!(
            again.is_some(),
            "{label}: free again once the lease is dropped"
        );
        assert!(a.try_lock_scope(&scope).await.unwrap().is_none(), "{label}");
        assert_eq!(
            a.is_scope_locked(&scope).await.unwrap(),
            expected(true),
            "{label}: asking takes nothing"
        );
        assert!(b.try_lock_scope(&other).await.unwrap().is_none(), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_long_value_fails_only_its_host() {
    for (label, builder) in common::builders("long") {
        let store = builder.connect().await.unwrap();
        let scope = SyncScope::hosts(common::unique("long"), Vendor::Huawei, "cn-north-4");
        let mut page = hosts(&scope, 5, HostStatus::Running);
        page[2].name = "x".repeat(600);
        page[3].instance_type = Some("y".repeat(300));
        let out = store.upsert(&scope, &page, at(0)).await.unwrap();
        assert_eq!(out[0], UpsertOutcome::Created, "{label}");
        assert!(
            matches!(&out[2], UpsertOutcome::Failed(r) if r.contains("name")),
            "{label}: {out:?}"
        );
        assert!(
            matches!(&out[3], UpsertOutcome::Failed(r) if r.contains("instance_type")),
            "{label}"
        );
        assert_eq!(out[4], UpsertOutcome::Created, "{label}");
        let stats = store.scope_stats(&scope, at(1)).await.unwrap();
        assert_eq!(stats.active, 3, "{label}: the other hosts are stored");
        assert!(HostStore::get(&store, Vendor::Huawei, &page[2].instance_id)
            .await
            .unwrap()
            .is_none());
    }
}

/// Batches with keys repeated within and across them, changed and unchanged hosts, hosts
/// outside the scope and releases in between: the SQL store answers every outcome and
/// keeps every host as the in-memory reference store does, which writes one host after
/// the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_with_repeated_keys_end_as_if_written_one_host_at_a_time() {
    for (label, builder) in common::builders("seq") {
        let store = builder.connect().await.unwrap();
        let reference = cmdb_core::MemoryHostStore::default();
        let scope = SyncScope::hosts(common::unique("seq"), Vendor::Aliyun, "cn-hangzhou");
        // A fixed-seed generator, so that a failure repeats.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        for round in 0..12i64 {
            // Up to 340 hosts: several statements, keys from a pool of 150.
            let size = 1 + next(340) as usize;
            let batch: Vec<Host> = (0..size)
                .map(|_| {
                    let key = next(150);
                    let mut host = Host::new(scope.vendor, format!("i-{key:04}"), &scope.region);
                    host.name = format!("host-{key}");
                    host.status = [HostStatus::Running, HostStatus::Stopped][next(2) as usize];
                    host.cpu = Some(1 + next(3) as u32);
                    if next(25) == 0 {
                        host.region = "elsewhere".into();
                    }
                    host
                })
                .collect();
            let got = store.upsert(&scope, &batch, at(10 * round)).await.unwrap();
            let want = reference
                .upsert(&scope, &batch, at(10 * round))
                .await
                .unwrap();
            assert_eq!(got, want, "{label}: round {round}");
            // Every other round, the hosts it missed: marked, or (every fourth) released.
            if round % 2 == 1 {
                let got = store
                    .missing(&scope, at(10 * round), None, 1000)
                    .await
                    .unwrap();
                let want = reference
                    .missing(&scope, at(10 * round), None, 1000)
                    .await
                    .unwrap();
                assert_eq!(got, want, "{label}: missing in round {round}");
                let ids: Vec<String> = want.into_iter().map(|m| m.instance_id).collect();
                let (got, want) = if round % 4 == 3 {
                    let (seen_before, released_at) = (at(10 * round), at(10 * round + 1));
                    (
                        store.release(&scope, &ids, seen_before, released_at).await,
                        reference
                            .release(&scope, &ids, seen_before, released_at)
                            .await,
                    )
                } else {
                    (
                        store.mark_missed(&scope, &ids, at(10 * round)).await,
                        reference.mark_missed(&scope, &ids, at(10 * round)).await,
                    )
                };
                assert_eq!(
                    got.unwrap(),
                    want.unwrap(),
                    "{label}: marked in round {round}"
                );
            }
        }
        for key in 0..150 {
            let id = format!("i-{key:04}");
            let got = HostStore::get(&store, scope.vendor, &id).await.unwrap();
            let want = HostStore::get(&reference, scope.vendor, &id).await.unwrap();
            assert_eq!(got, want, "{label}: {id}");
        }
    }
}

/// A batch whose every host is refused before it is written (its key is looked up while
/// the rows are made) fails host by host, and leaves no transaction behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_no_storable_host_fails_host_by_host_and_writes_nothing() {
    for (label, builder) in common::builders("none") {
        let store = builder.connect().await.unwrap();
        let scope = SyncScope::hosts(common::unique("none"), Vendor::Tencent, "ap-guangzhou");
        let mut page = hosts(&scope, 40, HostStatus::Running);
        for host in &mut page {
            host.name = "n".repeat(513);
        }
        for _ in 0..3 {
            let out = store.upsert(&scope, &page, at(0)).await.unwrap();
            assert_eq!(out.len(), 40, "{label}");
            assert!(
                out.iter()
                    .all(|o| matches!(o, UpsertOutcome::Failed(r) if r.contains("name"))),
                "{label}: {out:?}"
            );
        }
        let stats = store.scope_stats(&scope, at(1)).await.unwrap();
        assert_eq!(stats.active, 0, "{label}");
        // The store's connections are usable: the same hosts, fixed, are stored.
        let fixed = hosts(&scope, 40, HostStatus::Running);
        let out = store.upsert(&scope, &fixed, at(2)).await.unwrap();
        assert!(out.iter().all(|o| *o == UpsertOutcome::Created), "{label}");
        let stats = store.scope_stats(&scope, at(3)).await.unwrap();
        assert_eq!(stats.active, 40, "{label}");
    }
}

/// Dropping an upsert at any point (a crash mid-page) leaves the page all stored or not
/// at all: never half of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_upsert_leaves_the_previous_state() {
    for (label, builder) in common::builders("crash") {
        let store = builder.connect().await.unwrap();
        let scope = SyncScope::hosts(common::unique("crash"), Vendor::Aliyun, "cn-beijing");
        // Over one multi-row statement's worth, so the page takes several statements.
        let before = hosts(&scope, 1200, HostStatus::Running);
        store.upsert(&scope, &before, at(0)).await.unwrap();
        let after = hosts(&scope, 1200, HostStatus::Stopped);

        let stopped = |store: SqlStore, scope: SyncScope| async move {
            store
                .query(
                    &HostQuery::default()
                        .with_secret_id(scope.secret_id.clone())
                        .with_status(HostStatus::Stopped)
                        .with_page_size(1),
                )
                .await
                .unwrap()
                .total
        };
        let mut dropped_early = 0;
        for polls in [1usize, 2, 3, 5, 8, 13, 21, 34] {
            let mut fut = Box::pin(store.upsert(&scope, &after, at(10)));
            let mut done = false;
            for _ in 0..polls {
                if let Poll::Ready(r) = futures::poll!(&mut fut) {
                    r.unwrap();
                    done = true;
                    break;
                }
                tokio::task::yield_now().await;
            }
            drop(fut);
            let n = stopped(store.clone(), scope.clone()).await;
            if done {
                assert_eq!(n, 1200, "{label}: a finished upsert is stored");
                break;
            }
            dropped_early += 1;
            assert!(
                n == 0 || n == 1200,
                "{label}: half a page stored ({n}) after {polls} polls"
            );
            let first = HostStore::get(&store, Vendor::Aliyun, &before[0].instance_id)
                .await
                .unwrap()
                .unwrap();
            if n == 0 {
                assert_eq!(
                    first.last_seen_at,
                    at(0),
                    "{label}: nothing of the page moved"
                );
            }
        }
        assert!(
            dropped_early > 0,
            "{label}: the upsert was never interrupted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_redacts_the_password() {
    let b = SqlStore::builder("postgres://cmdb:hunter2@db.example:5432/cmdb");
    let shown = format!("{b:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("****"), "{shown}");
    let store = SqlStore::connect("sqlite::memory:").await.unwrap();
    assert!(format!("{store:?}").contains("sqlite"));
    assert_eq!(
        cmdb_store_sql::redact_url("mysql://root:pw@127.0.0.1:3306/x?password=pw2"),
        "mysql://root:****@127.0.0.1:3306/x?password=****"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_scheme_is_invalid_input() {
    let err = SqlStore::connect("oracle://x").await.unwrap_err();
    assert_eq!(err.kind(), cmdb_core::ErrorKind::InvalidInput);
}

/// Two syncers in two tasks, each on its own pool, syncing different scopes into one
/// database: every host of both is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncers_on_separate_pools_lose_nothing() {
    for (label, builder) in common::builders("sync") {
        let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
        let setup = builder.clone().connect().await.unwrap();
        let mut tasks = Vec::new();
        let mut secrets = Vec::new();
        for (i, region) in ["cn-hangzhou", "cn-shanghai"].into_iter().enumerate() {
            let secret = NewSecret::new(Vendor::Aliyun, common::unique("AK"), "not-a-secret")
                .with_description(format!("sync test {i}"))
                .with_allowed_regions([region])
                .with_request_rate(1000)
                .seal(&cipher)
                .unwrap();
            setup.create(&secret).await.unwrap();
            secrets.push(secret.id.clone());
            let store = Arc::new(builder.clone().max_connections(3).connect().await.unwrap());
            let registry =
                ProviderRegistry::new().with(Vendor::Aliyun, move |ctx: ProviderContext| {
                    let p: Arc<dyn HostProvider> = Arc::new(FakeProvider::new(
                        Vendor::Aliyun,
                        ctx.region.clone(),
                        1500,
                        100,
                    ));
                    Ok(p)
                });
            let syncer = Syncer::new(store.clone(), store, cipher.clone(), registry);
            let request = SyncRequest::new(&secret.id, region);
            tasks.push(tokio::spawn(async move { syncer.sync(request).await }));
        }
        for t in tasks {
            let r = t.await.unwrap().expect("sync");
            assert!(r.complete, "{label}");
            assert_eq!((r.created, r.total_failed), (1500, 0), "{label}");
        }
        for id in &secrets {
            let q = HostQuery::default()
                .with_secret_id(id.clone())
                .with_page_size(1);
            assert_eq!(
                setup.query(&q).await.unwrap().total,
                1500,
                "{label}: hosts of {id}"
            );
        }
    }
}

/// A host the database itself refuses (a trigger here, standing for any rule the checks
/// before writing do not know) fails alone, in whichever statement of a batch it falls;
/// the statements before it, rolled back with it, are written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_the_database_refuses_fails_alone_in_a_batch_of_several_statements() {
    let url = common::sqlite_url("refuse");
    let store = SqlStore::builder(url.clone()).connect().await.unwrap();
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TRIGGER refuse_one BEFORE INSERT ON cmdb_hosts WHEN NEW.name = 'refused' \
         BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let scope = SyncScope::hosts(common::unique("refuse"), Vendor::Huawei, "cn-north-4");
    // Three statements of 100 rows at most; the refused host is in the third.
    let mut page = hosts(&scope, 250, HostStatus::Running);
    page[230].name = "refused".into();
    let out = store.upsert(&scope, &page, at(0)).await.unwrap();
    assert!(
        matches!(&out[230], UpsertOutcome::Failed(r) if r.contains("refused by a trigger")),
        "{:?}",
        out[230]
    );
    let created = out.iter().filter(|o| **o == UpsertOutcome::Created).count();
    assert_eq!(created, 249);
    let stats = store.scope_stats(&scope, at(1)).await.unwrap();
    assert_eq!(stats.active, 249, "every other host is stored");
    assert!(
        HostStore::get(&store, Vendor::Huawei, &page[230].instance_id)
            .await
            .unwrap()
            .is_none()
    );
}

fn bound_secret(tag: &str, address: &str) -> NewSecret {
    NewSecret::new(
        Vendor::Aliyun,
        format!("LTAI{}", common::unique(tag).replace('_', "")),
        format!("password-{tag}"),
    )
    .with_session_token(format!("session-token-{tag}"))
    .with_description(format!("binding {tag}"))
    .with_allowed_regions(["*"])
    .with_address(address)
}

/// A syncer whose Aliyun factory records the endpoints it was asked to build a provider
/// for: a refused sync must never get that far.
fn recording_syncer(
    store: &Arc<SqlStore>,
    cipher: &Cipher,
) -> (Syncer, Arc<std::sync::Mutex<Vec<Option<String>>>>) {
    let built = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = built.clone();
    let registry = ProviderRegistry::new().with(Vendor::Aliyun, move |ctx: ProviderContext| {
        seen.lock().unwrap().push(ctx.endpoint.clone());
        let p: Arc<dyn HostProvider> =
            Arc::new(FakeProvider::new(Vendor::Aliyun, ctx.region.clone(), 3, 10));
        Ok(p)
    });
    let syncer = Syncer::new(
        store.clone(),
        store.clone(),
        Arc::new(cipher.clone()),
        registry,
    );
    (syncer, built)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_row_redirected_in_the_database_fails_to_decrypt_and_is_never_synced() {
    const ADDRESS: &str = "https://ecs.example.com";
    for raw in common::raw_backends("bind") {
        let label = raw.label;
        let store = Arc::new(raw.builder.clone().connect().await.unwrap());
        let cipher = Cipher::new(Cipher::generate_key());
        let table = raw.table("cmdb_secrets");
        // Each change of where the password would go, made behind the store's back.
        let changes = [
            ("address", "address = 'https://attacker.example'"),
            ("no address", "address = NULL"),
            ("api key", "api_key = 'LTAIsomeoneelse0001'"),
            ("vendor", "vendor = 'tencent'"),
            ("TLS", "tls_skip_verify = 1"),
            // Either ciphertext in the other's place.
            ("token as api_secret", "api_secret = session_token"),
            ("api_secret as token", "session_token = api_secret"),
        ];
        let (syncer, built) = recording_syncer(&store, &cipher);
        for (what, set) in changes {
            let secret = bound_secret("bind", ADDRESS).seal(&cipher).unwrap();
            store.create(&secret).await.unwrap();
            let stored = SecretStore::get(&*store, &secret.id).await.unwrap();
            let creds = cipher.decrypt_credentials(&stored).unwrap();
            assert_eq!(
                (creds.api_secret(), creds.session_token()),
                ("password-bind", Some("session-token-bind")),
                "{label}: {what}"
            );

            raw.execute(&format!(
                "UPDATE {table} SET {set} WHERE id = '{}'",
                secret.id
            ))
            .await;
            let changed = SecretStore::get(&*store, &secret.id).await.unwrap();
            assert_ne!(changed, stored, "{label}: {what} changed");
            let e = cipher
                .decrypt_credentials(&changed)
                .expect_err("a redirected row must not decrypt");
            assert_eq!(e.kind(), ErrorKind::Crypto, "{label}: {what}: {e}");
            assert!(e.message().contains(&secret.id), "{label}: {e}");

            let e = syncer
                .sync(SyncRequest::new(&secret.id, "cn-hangzhou"))
                .await
                .expect_err("a redirected secret is not synced");
            assert_eq!(e.kind(), ErrorKind::Crypto, "{label}: {what}: {e}");
        }
        assert!(
            built.lock().unwrap().is_empty(),
            "{label}: no provider was built for a redirected secret"
        );

        // An untouched secret still syncs, to its own address.
        let fine = bound_secret("fine", ADDRESS).seal(&cipher).unwrap();
        store.create(&fine).await.unwrap();
        let r = syncer
            .sync(SyncRequest::new(&fine.id, "cn-hangzhou"))
            .await
            .expect("an untouched secret syncs");
        assert_eq!(r.created, 3, "{label}");
        assert_eq!(*built.lock().unwrap(), vec![Some(ADDRESS.to_owned())]);
    }
}

/// A secret sealed before the binding (`v1:`, with its id as associated data) in a
/// database the earlier migration runner left at version 4 (`api_key_lc` holding the
/// masked key): after the upgrade the key is searchable only masked, the secret keeps
/// decrypting, and `rotate_secrets` binds it to its address and key, after which a
/// redirected row fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_of_an_older_schema_stay_usable_and_are_rebound_by_rotation() {
    for raw in common::raw_backends("legacy") {
        let label = raw.label;
        let cipher = Cipher::new(Cipher::generate_key());
        raw.create_old_runner_schema(4).await;

        let id = common::unique("legacy").replace('_', "-");
        let key = "LTAI5tMiddleOfTheKey9xZ";
        let legacy = cipher.encrypt(&id, b"legacy-password").unwrap();
        assert!(legacy.starts_with("v1:"));
        raw.execute(&format!(
            "INSERT INTO {} (id, vendor, description, api_key, api_secret, allowed_regions, \
             request_rate, address, created_at, id_lc, description_lc, api_key_lc) VALUES \
             ('{id}', 'aliyun', 'legacy account', '{key}', '{legacy}', '[\"*\"]', 5, \
             'https://ecs.example.com', 1, '{id}', 'legacy account', '{}')",
            raw.table("cmdb_secrets"),
            cmdb_secret::mask_api_key(key).to_ascii_lowercase()
        ))
        .await;

        let store = Arc::new(raw.builder.clone().connect().await.expect("upgrade"));
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let total = |keywords: &str| {
            let store = store.clone();
            let keywords = keywords.to_owned();
            async move {
                store
                    .list(&cmdb_secret::SecretQuery::default().with_keywords(keywords))
                    .await
                    .unwrap()
                    .total
            }
        };
        assert_eq!(total("MiddleOfTheKey").await, 0, "{label}: key middle");
        assert_eq!(total(key).await, 0, "{label}: whole key");
        assert_eq!(total("LTAI****9xZ").await, 0, "{label}: not a mask");
        assert_eq!(total("ltai****y9xz").await, 1, "{label}: masked key");
        assert_eq!(
            total(&cmdb_secret::mask_api_key(key)).await,
            1,
            "{label}: masked key as listed"
        );

        let stored = SecretStore::get(&*store, &id).await.unwrap();
        assert!(Cipher::is_legacy_binding(&stored), "{label}");
        assert_eq!(
            cipher.decrypt_credentials(&stored).unwrap().api_secret(),
            "legacy-password",
            "{label}: a legacy row keeps decrypting until it is rotated"
        );

        let report = cmdb_secret::rotate_secrets(&*store, &cipher).await.unwrap();
        assert_eq!((report.rotated, report.already_current), (1, 0), "{label}");
        let rebound = SecretStore::get(&*store, &id).await.unwrap();
        assert!(rebound.api_secret.starts_with("v2:"), "{label}");
        assert_eq!(
            cipher.decrypt_credentials(&rebound).unwrap().api_secret(),
            "legacy-password",
            "{label}"
        );
        let again = cmdb_secret::rotate_secrets(&*store, &cipher).await.unwrap();
        assert_eq!((again.rotated, again.already_current), (0, 1), "{label}");

        raw.execute(&format!(
            "UPDATE {} SET address = 'https://attacker.example' WHERE id = '{id}'",
            raw.table("cmdb_secrets")
        ))
        .await;
        let e = cipher
            .decrypt_credentials(&SecretStore::get(&*store, &id).await.unwrap())
            .expect_err("a rebound row is bound to its address");
        assert_eq!(e.kind(), ErrorKind::Crypto, "{label}: {e}");
    }
}
