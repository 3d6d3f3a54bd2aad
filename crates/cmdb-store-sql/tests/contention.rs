//! Concurrent writers and scope locks that must hold: PostgreSQL and MySQL when their
//! variables are set (see `common`), SQLite always.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use cmdb_core::{Host, HostQuery, HostStatus, HostStore, SyncScope, UpsertOutcome, Vendor};
use cmdb_store_sql::{Backend, SqlStore, SqlStoreBuilder};
use sqlx::Connection;

fn at(seconds: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

const ROUNDS: usize = 50;
const NEW_PER_ROUND: usize = 40;

/// Two writers on pools of their own, over two scopes (two secrets) that list the same
/// hosts, started together in every round: each round brings 40 new hosts and the 40 of
/// the round before again, changed, one writer in ascending order and the other in
/// descending order. No host fails (a deadlock, a lock wait or a key created by the other
/// writer is contention, run again), and each host is created exactly once in all.
async fn two_writers_of_the_same_hosts(label: &str, builder: SqlStoreBuilder) {
    let a = builder.clone().max_connections(2).connect().await.unwrap();
    let b = builder.clone().max_connections(2).connect().await.unwrap();
    let prefix = common::unique("race");
    let scope_a = SyncScope::hosts(format!("{prefix}-a"), Vendor::Aliyun, "cn-hangzhou");
    let scope_b = SyncScope::hosts(format!("{prefix}-b"), Vendor::Aliyun, "cn-hangzhou");
    let host = |n: usize, round: usize, cpu: u32| {
        let mut h = Host::new(Vendor::Aliyun, format!("{prefix}-{n:05}"), "cn-hangzhou");
        h.name = format!("host-{n}");
        h.status = [HostStatus::Running, HostStatus::Stopped][round % 2];
        h.cpu = Some(cpu);
        h
    };
    let mut created: HashMap<String, usize> = HashMap::new();
    let mut updated = 0;
    for round in 0..ROUNDS {
        let first = round.saturating_sub(1) * NEW_PER_ROUND;
        let ids = first..(round + 1) * NEW_PER_ROUND;
        let batch_a: Vec<Host> = ids.clone().map(|n| host(n, round, 2)).collect();
        let batch_b: Vec<Host> = ids.rev().map(|n| host(n, round, 4)).collect();
        let seen = at(round as i64);
        let (store_a, store_b) = (a.clone(), b.clone());
        let (sa, sb) = (scope_a.clone(), scope_b.clone());
        let (ba, bb) = (batch_a.clone(), batch_b.clone());
        let task_a = tokio::spawn(async move { store_a.upsert(&sa, &ba, seen).await });
        let task_b = tokio::spawn(async move { store_b.upsert(&sb, &bb, seen).await });
        let out_a = task_a
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let out_b = task_b
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        for (batch, out) in [(&batch_a, out_a), (&batch_b, out_b)] {
            assert_eq!(out.len(), batch.len(), "{label}");
            for (h, o) in batch.iter().zip(out) {
                match o {
                    UpsertOutcome::Created => {
                        *created.entry(h.instance_id.clone()).or_default() += 1
                    }
                    UpsertOutcome::Updated => updated += 1,
                    UpsertOutcome::Unchanged => {}
                    UpsertOutcome::Failed(reason) => {
                        panic!("{label}: round {round}: {} failed: {reason}", h.instance_id)
                    }
                    other => panic!("{label}: round {round}: {}: {other:?}", h.instance_id),
                }
            }
        }
    }
    let total = ROUNDS * NEW_PER_ROUND;
    assert_eq!(created.len(), total, "{label}: every host created");
    let twice: Vec<_> = created.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "{label}: created more than once: {twice:?}"
    );
    // The writers differ in content, so whichever writes second updates.
    assert!(updated >= total, "{label}: {updated} updates");
    let stored = a
        .query(
            &HostQuery::default()
                .with_keywords(prefix.clone())
                .with_page_size(1),
        )
        .await
        .unwrap();
    assert_eq!(stored.total, total as u64, "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_postgres() {
    let Some(b) = common::postgres("race") else {
        return;
    };
    two_writers_of_the_same_hosts("postgres", b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_mysql() {
    let Some(b) = common::mysql("race") else {
        return;
    };
    two_writers_of_the_same_hosts("mysql", b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_sqlite() {
    two_writers_of_the_same_hosts("sqlite", SqlStore::builder(common::sqlite_url("race"))).await;
}

/// A lease whose session the server ended (an operator's kill, a restart, a failover)
/// says so: the sync it guards must not release anything. The lock is free for others.
async fn lease_dies_with_its_session(label: &str, builder: SqlStoreBuilder, url: &str) {
    let store = builder.clone().connect().await.unwrap();
    let other = builder.clone().connect().await.unwrap();
    let scope = SyncScope::hosts(common::unique("kill"), Vendor::Huawei, "cn-north-4");
    let lease = store.try_lock_scope(&scope).await.unwrap().expect("lock");
    assert!(lease.is_held().await.unwrap(), "{label}: held");
    assert!(
        other.try_lock_scope(&scope).await.unwrap().is_none(),
        "{label}"
    );
    let session = other
        .scope_lock_session(&scope)
        .await
        .unwrap()
        .expect("a session holds the lock");

    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(url).await.unwrap();
    let kill = match store.backend() {
        // Waits (up to 10 s) until the backend has ended.
        Backend::Postgres => format!("SELECT pg_terminate_backend({session}, 10000)"),
        _ => format!("KILL {session}"),
    };
    sqlx::raw_sql(&kill).execute(&mut admin).await.unwrap();
    assert!(
        !lease.is_held().await.unwrap(),
        "{label}: the session is gone, and the lock with it"
    );
    // The server frees the lock once it has cleaned the session up.
    let mut taken = None;
    for _ in 0..100 {
        taken = other.try_lock_scope(&scope).await.unwrap();
        if taken.is_some() || other.scope_lock_session(&scope).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let taken = match taken {
        Some(t) => t,
        None => other
            .try_lock_scope(&scope)
            .await
            .unwrap()
            .expect("free again"),
    };
    assert!(taken.is_held().await.unwrap(), "{label}");
    assert!(
        !lease.is_held().await.unwrap(),
        "{label}: still not the old lease's"
    );
    drop(lease);
    assert!(
        taken.is_held().await.unwrap(),
        "{label}: dropping the old lease frees nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lease_is_lost_with_its_session() {
    let Some(b) = common::postgres("kill") else {
        return;
    };
    let url = std::env::var("CMDB_TEST_POSTGRES_URL").unwrap();
    lease_dies_with_its_session("postgres", b, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_lease_is_lost_with_its_session() {
    let Some(b) = common::mysql("kill") else {
        return;
    };
    let url = std::env::var("CMDB_TEST_MYSQL_URL").unwrap();
    lease_dies_with_its_session("mysql", b, &url).await;
}

/// A SQLite lease is held while its row is its own, and says no once another owner's row
/// replaced it; a row whose owner process on this host has exited is taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lease_is_held_while_its_row_is_its_own() {
    let url = common::sqlite_url("held");
    let store = SqlStore::connect(&url).await.unwrap();
    let other = SqlStore::connect(&url).await.unwrap();
    let scope = SyncScope::hosts(common::unique("held"), Vendor::Aliyun, "cn-beijing");
    let lease = store.try_lock_scope(&scope).await.unwrap().expect("lock");
    assert!(lease.is_held().await.unwrap());
    assert!(other.try_lock_scope(&scope).await.unwrap().is_none());

    // The owner becomes a process of this host that has exited (as if this one crashed).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!(
        "UPDATE cmdb_scope_locks SET owner_pid = {dead}, owner_token = 'crashed' \
         WHERE scope = '{scope}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    assert!(
        !lease.is_held().await.unwrap(),
        "the row is no longer its own"
    );
    let taken = other
        .try_lock_scope(&scope)
        .await
        .unwrap()
        .expect("a dead owner's lock is taken over");
    assert!(taken.is_held().await.unwrap());
    drop(lease);
    assert!(taken.is_held().await.unwrap());
}

/// A deadlock between an upsert and another transaction, made on purpose: the other
/// transaction (heavier, so that MySQL picks the upsert as the victim; on PostgreSQL the
/// upsert, waiting longer, finds the cycle first) locks host Z, the upsert of X and Z locks
/// X and waits for Z, then the other asks for X. The upsert is rolled back by the server
/// and runs again: it answers every host, none failed, and its content is what is stored.
async fn a_deadlocked_upsert_runs_again(label: &str, server: common::Server) {
    let store = server.builder.connect().await.unwrap();
    let prefix = common::unique("dl");
    let scope = SyncScope::hosts(format!("{prefix}-s"), Vendor::Tencent, "ap-guangzhou");
    let host = |id: &str, name: &str| {
        let mut h = Host::new(Vendor::Tencent, format!("{prefix}-{id}"), "ap-guangzhou");
        h.name = name.into();
        h
    };
    let mut setup = vec![host("x", "x0"), host("z", "z0")];
    setup.extend((0..50).map(|i| host(&format!("b{i:02}"), "ballast")));
    store.upsert(&scope, &setup, at(0)).await.unwrap();

    let (table, probe) = match store.backend() {
        Backend::Postgres => (
            format!("\"{}\".cmdb_hosts", server.schema),
            "SELECT COUNT(*) FROM pg_stat_activity WHERE {me} = ANY(pg_blocking_pids(pid))",
        ),
        _ => (
            format!("`{}`.cmdb_hosts", server.schema),
            // A statement running in the test's own database is the upsert's (the other
            // connections use the URL's); the lock-wait views of MariaDB miss some waits.
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE DB = '{schema}' AND COMMAND IN ('Execute', 'Query')",
        ),
    };
    sqlx::any::install_default_drivers();
    let mut other = sqlx::AnyConnection::connect(&server.url).await.unwrap();
    let mut watcher = sqlx::AnyConnection::connect(&server.url).await.unwrap();
    let me_sql = match store.backend() {
        Backend::Postgres => "SELECT CAST(pg_backend_pid() AS BIGINT)",
        _ => "SELECT CAST(CONNECTION_ID() AS SIGNED)",
    };
    let row = sqlx::raw_sql(me_sql).fetch_one(&mut other).await.unwrap();
    let me: i64 = sqlx::Row::get(&row, 0);
    sqlx::raw_sql("BEGIN").execute(&mut other).await.unwrap();
    let ballast: Vec<String> = (0..50).map(|i| format!("'{prefix}-b{i:02}'")).collect();
    sqlx::raw_sql(&format!(
        "UPDATE {table} SET name = 'heavy' WHERE vendor = 'tencent' AND instance_id IN ({})",
        ballast.join(", ")
    ))
    .execute(&mut other)
    .await
    .unwrap();
    sqlx::raw_sql(&format!(
        "SELECT name FROM {table} WHERE vendor = 'tencent' AND instance_id = '{prefix}-z' FOR UPDATE"
    ))
    .fetch_all(&mut other)
    .await
    .unwrap();

    let batch = vec![host("x", "x1"), host("z", "z1")];
    let upsert = {
        let (store, scope, batch) = (store.clone(), scope.clone(), batch.clone());
        tokio::spawn(async move { store.upsert(&scope, &batch, at(10)).await })
    };
    // Until the upsert waits for the other transaction (it holds X then).
    // (Seen in two polls in a row: a statement that is not blocked ends in far less.)
    let probe = probe
        .replace("{me}", &me.to_string())
        .replace("{schema}", &server.schema);
    let mut waiting = false;
    let mut seen = 0;
    for _ in 0..200 {
        let row = sqlx::raw_sql(&probe).fetch_one(&mut watcher).await.unwrap();
        seen = if sqlx::Row::get::<i64, _>(&row, 0) > 0 {
            seen + 1
        } else {
            0
        };
        if seen == 2 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        waiting,
        "{label}: the upsert never waited for the other transaction"
    );
    sqlx::raw_sql(&format!(
        "UPDATE {table} SET name = 'other' WHERE vendor = 'tencent' AND instance_id = '{prefix}-x'"
    ))
    .execute(&mut other)
    .await
    .unwrap_or_else(|e| panic!("{label}: the other transaction was the victim: {e}"));
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();

    let out = upsert
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(out, vec![UpsertOutcome::Updated; 2], "{label}");
    for (id, name) in [("x", "x1"), ("z", "z1")] {
        let stored = HostStore::get(&store, Vendor::Tencent, &format!("{prefix}-{id}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.host.name, name, "{label}");
        assert_eq!(stored.last_seen_at, at(10), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlocked_upsert_runs_again_postgres() {
    let Some(server) = common::postgres_server("dl") else {
        return;
    };
    a_deadlocked_upsert_runs_again("postgres", server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlocked_upsert_runs_again_mysql() {
    let Some(server) = common::mysql_server("dl") else {
        return;
    };
    a_deadlocked_upsert_runs_again("mysql", server).await;
}

/// A running sync holds one database connection of its own (its scope lock's session,
/// outside the pool), no more, and the pool keeps serving writes while locks are held:
/// counted on the PostgreSQL server by the connections' application name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_scope_lock_holds_one_connection_outside_the_pool_postgres() {
    let Some(server) = common::postgres_server("conns") else {
        return;
    };
    let app = common::unique("conns").replace('-', "_");
    let store = SqlStore::builder(format!("{}?application_name={app}", server.url))
        .schema(server.schema.clone())
        .max_connections(2)
        .connect()
        .await
        .unwrap();
    sqlx::any::install_default_drivers();
    let mut probe = sqlx::AnyConnection::connect(&server.url).await.unwrap();
    let scopes: Vec<SyncScope> = (0..3)
        .map(|i| SyncScope::hosts(common::unique("conns"), Vendor::Aliyun, format!("r-{i}")))
        .collect();
    let sql = format!("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = '{app}'");
    let mut leases = Vec::new();
    for scope in &scopes {
        leases.push(store.try_lock_scope(scope).await.unwrap().expect("lock"));
    }
    let host = Host::new(Vendor::Aliyun, common::unique("i"), "r-0");
    store.upsert(&scopes[0], &[host], at(0)).await.unwrap();
    let held = connections(&mut probe, &sql).await;
    assert!(
        (3..=2 + 3).contains(&held),
        "three locks and a pool of two: {held} connections"
    );
    // Released in the background: poll until the server has seen them go.
    drop(leases);
    let mut after = connections(&mut probe, &sql).await;
    for _ in 0..100 {
        if after <= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = connections(&mut probe, &sql).await;
    }
    assert!(
        after <= 2,
        "the locks' connections are closed: {after} left"
    );
}

/// The first column of the one row `sql` answers, a count.
async fn connections(probe: &mut sqlx::AnyConnection, sql: &str) -> i64 {
    let row = sqlx::query(sql).fetch_one(probe).await.unwrap();
    sqlx::Row::get::<i64, _>(&row, 0)
}
