//! The queries of the README's "Querying the tables", read from the README itself and
//! run as written on every database after a sync-like set of upserts and releases.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use cmdb_core::{Host, HostStatus, HostStore, SyncScope, Vendor};
use sqlx::any::AnyRow;
use sqlx::Row as _;

/// A query of the README: the heading it is under, the databases its first line names,
/// and its text.
#[derive(Debug)]
struct Query {
    title: String,
    databases: Vec<String>,
    text: String,
}

/// The `sql` code blocks of the README's section "Querying the tables".
fn readme_queries() -> Vec<Query> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let start = readme
        .find("\n## Querying the tables\n")
        .expect("the section is in the README");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut queries = Vec::new();
    let mut title = String::new();
    let mut block: Option<String> = None;
    for line in section.lines() {
        match (&mut block, line) {
            (None, l) if l.starts_with("### ") => title = l[4..].to_owned(),
            (None, "```sql") => block = Some(String::new()),
            (Some(text), "```") => {
                let first = text.lines().next().unwrap_or_default();
                let databases = first
                    .strip_prefix("-- ")
                    .expect("a query names its databases on its first line")
                    .split(", ")
                    .map(str::to_owned)
                    .collect();
                queries.push(Query {
                    title: title.clone(),
                    databases,
                    text: std::mem::take(text),
                });
                block = None;
            }
            (Some(text), l) => {
                text.push_str(l);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    queries
}

/// The name the README gives a test backend.
fn database_name(label: &str) -> &'static str {
    match label {
        "postgres" => "PostgreSQL",
        "mysql" => "MySQL",
        _ => "SQLite",
    }
}

fn host(vendor: Vendor, id: &str, region: &str, status: HostStatus, env: Option<&str>) -> Host {
    let mut h = Host::new(vendor, id, region);
    h.name = format!("name of {id}");
    h.status = status;
    if let Some(env) = env {
        h.tags.insert("env".into(), env.into());
    }
    h
}

/// Two scopes synced 40 days ago; three hosts released since: one and three days ago,
/// and one a month ago.
async fn sync_like(store: &cmdb_store_sql::SqlStore, now: DateTime<Utc>) {
    let aliyun = SyncScope::hosts("readme-aliyun", Vendor::Aliyun, "cn-hangzhou");
    let tencent = SyncScope::hosts("readme-tencent", Vendor::Tencent, "ap-guangzhou");
    let r = |id, status, env| host(Vendor::Aliyun, id, "cn-hangzhou", status, env);
    let t = |id, status, env| host(Vendor::Tencent, id, "ap-guangzhou", status, env);
    let synced = now - Duration::days(40);
    let aliyun_hosts = vec![
        r("i-a1", HostStatus::Running, Some("prod")),
        r("i-a2", HostStatus::Running, Some("prod")),
        r("i-a3", HostStatus::Stopped, Some("dev")),
        r("i-a4", HostStatus::Running, Some("prod")),
        r("i-a5", HostStatus::Running, Some("dev")),
    ];
    let tencent_hosts = vec![
        t("ins-t1", HostStatus::Running, Some("prod")),
        t("ins-t2", HostStatus::Running, None),
    ];
    store.upsert(&aliyun, &aliyun_hosts, synced).await.unwrap();
    store
        .upsert(&tencent, &tencent_hosts, synced)
        .await
        .unwrap();
    let before = now - Duration::days(35);
    for (scope, id, days) in [
        (&aliyun, "i-a2", 1),
        (&aliyun, "i-a5", 3),
        (&tencent, "ins-t2", 30),
    ] {
        let released = store
            .release(scope, &[id.to_owned()], before, now - Duration::days(days))
            .await
            .unwrap();
        assert_eq!(released, 1, "{id}");
    }
}

/// A column as text (MySQL may answer text as bytes), or a number as text.
fn cell(row: &AnyRow, i: usize) -> String {
    if let Ok(n) = row.try_get::<i64, _>(i) {
        return n.to_string();
    }
    row.try_get::<String, _>(i)
        .or_else(|_| {
            row.try_get::<Vec<u8>, _>(i)
                .map(|b| String::from_utf8(b).unwrap())
        })
        .unwrap_or_else(|e| panic!("column {i}: {e}"))
}

fn expected() -> BTreeMap<&'static str, Vec<Vec<&'static str>>> {
    BTreeMap::from([
        (
            "Hosts by tag",
            vec![
                vec!["aliyun", "i-a1", "name of i-a1"],
                vec!["aliyun", "i-a4", "name of i-a4"],
                vec!["tencent", "ins-t1", "name of ins-t1"],
            ],
        ),
        (
            "Hosts released this week (the last seven days)",
            vec![
                vec!["aliyun", "i-a2", "name of i-a2"],
                vec!["aliyun", "i-a5", "name of i-a5"],
            ],
        ),
        (
            "Hosts by vendor and status",
            vec![
                vec!["aliyun", "RUNNING", "2"],
                vec!["aliyun", "STOPPED", "1"],
                vec!["tencent", "RUNNING", "1"],
            ],
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_queries_answer_as_documented_on_every_database() {
    let queries = readme_queries();
    let expected = expected();
    let titles: Vec<&str> = expected.keys().copied().collect();
    for title in &titles {
        for database in ["SQLite", "PostgreSQL", "MySQL"] {
            let n = queries
                .iter()
                .filter(|q| q.title == *title && q.databases.iter().any(|d| d == database))
                .count();
            assert_eq!(n, 1, "one query {title:?} for {database}: {queries:#?}");
        }
    }
    assert!(
        queries.iter().all(|q| titles.contains(&q.title.as_str())),
        "every query is checked: {queries:#?}"
    );

    for raw in common::raw_backends("readme") {
        let label = raw.label;
        let store = raw.builder.clone().connect().await.unwrap();
        sync_like(&store, Utc::now().trunc_subsecs(6)).await;
        let mut conn = raw.connect().await;
        let name = database_name(label);
        for query in queries
            .iter()
            .filter(|q| q.databases.iter().any(|d| d == name))
        {
            let rows = sqlx::raw_sql(&query.text)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{label}: {}: {e}", query.title));
            let got: Vec<Vec<String>> = rows
                .iter()
                .map(|row| (0..row.len()).map(|i| cell(row, i)).collect())
                .collect();
            assert_eq!(
                got,
                expected[query.title.as_str()],
                "{label}: {}",
                query.title
            );
        }
        sqlx::Connection::close(conn).await.unwrap();
        store.close().await;
    }
}
