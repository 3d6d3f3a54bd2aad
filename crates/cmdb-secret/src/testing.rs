//! The conformance suite every [`SecretStore`] must pass.
//!
//! The suite panics with a message naming the broken rule. It works only with secrets it
//! creates (unique ids, API keys and descriptions per run), so it may run against a store
//! that other tests use at the same time, and it deletes what it created when it passes.
//! It spawns tasks, so run it inside a tokio runtime.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use cmdb_secret::{testing, Cipher, MemorySecretStore};
//!
//! let cipher = Cipher::new(Cipher::generate_key());
//! testing::secret_store_conformance(Arc::new(MemorySecretStore::new()), &cipher).await;
//! # });
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{Duration, SubsecRound, TimeZone, Utc};
use cmdb_core::{ErrorKind, Vendor};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::cipher::Cipher;
use crate::rotate::{rotate_secret, Rotation};
use crate::schedule::{DueSync, SyncInterval};
use crate::secret::{mask_api_key, Ciphertexts, NewSecret, Secret, SecretPatch, MASKED_API_SECRET};
use crate::store::{SecretQuery, SecretStore};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A token no other run of the suite uses, in this process or another.
fn unique_run() -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut salt = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    format!("sc{nanos:x}n{n}r{}", hex::encode(salt))
}

/// The run's secrets, so they can be deleted at the end.
struct Run<'a> {
    token: String,
    store: &'a dyn SecretStore,
    cipher: &'a Cipher,
    created: Vec<String>,
}

impl Run<'_> {
    fn new_secret(&self, tag: &str, vendor: Vendor) -> NewSecret {
        NewSecret {
            vendor,
            description: format!("conformance {}-{tag}", self.token),
            api_key: format!("AK{}{tag}", self.token),
            api_secret: Zeroizing::new(format!("sk-{tag}-{}", self.token)),
            // vSphere has no temporary credentials; every other vendor's secret has one.
            session_token: (vendor != Vendor::Vsphere)
                .then(|| Zeroizing::new(format!("st-{tag}-{}", self.token))),
            allowed_regions: vec!["cn-hangzhou".into(), "cn-beijing".into()],
            request_rate: Some(7),
            address: Some(format!("https://{tag}.endpoint.example:8443/api")),
            // Every setting away from its default, so that stores must keep each one.
            allow_insecure_http: true,
            tls_ca_pem: Some(format!(
                "-----BEGIN CERTIFICATE-----\n{tag}\n-----END CERTIFICATE-----\n"
            )),
            tls_skip_verify: true,
            sync_interval: Some(SyncInterval::new(std::time::Duration::from_secs(300)).unwrap()),
        }
    }

    fn seal(&self, tag: &str, vendor: Vendor) -> Secret {
        self.new_secret(tag, vendor)
            .seal(self.cipher)
            .expect("seal")
    }

    async fn create(&mut self, secret: &Secret) {
        self.store
            .create(secret)
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", secret.id));
        self.created.push(secret.id.clone());
    }

    async fn total(&self, keywords: &str) -> u64 {
        self.store
            .list(&SecretQuery {
                page_size: 100,
                page_number: 1,
                keywords: Some(keywords.to_owned()),
            })
            .await
            .expect("list")
            .total
    }
}

/// Runs every check of the [`SecretStore`] contract against `store`; `cipher` seals the
/// secrets the suite creates.
pub async fn secret_store_conformance(store: Arc<dyn SecretStore>, cipher: &Cipher) {
    let mut run = Run {
        token: unique_run(),
        store: &*store,
        cipher,
        created: Vec::new(),
    };
    round_trip(&mut run).await;
    duplicates_conflict(&mut run).await;
    unknown_ids_are_not_found(&run).await;
    delete_removes(&mut run).await;
    listing_is_masked_paged_and_ordered(&mut run).await;
    keywords_filter(&mut run).await;
    invalid_queries_are_refused(&run).await;
    replace_is_compare_and_swap(&mut run).await;
    update_is_compare_and_swap(&mut run).await;
    rotation(&mut run).await;
    schedules_are_claimed_once(Arc::clone(&store), &mut run).await;
    concurrent_creates_of_one_key(Arc::clone(&store), &mut run).await;

    for id in std::mem::take(&mut run.created) {
        match store.delete(&id).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => panic!("delete {id}: {e}"),
        }
    }
}

async fn round_trip(run: &mut Run<'_>) {
    let secret = run.seal("rt", Vendor::Aliyun);
    run.create(&secret).await;
    let got = run
        .store
        .get(&secret.id)
        .await
        .expect("get a created secret");
    assert_eq!(
        got, secret,
        "a stored secret reads back unchanged (created_at to the µs)"
    );
    let creds = run
        .cipher
        .decrypt_credentials(&got)
        .expect("the stored ciphertext decrypts");
    assert_eq!(creds.api_secret(), format!("sk-rt-{}", run.token));
    assert_eq!(creds.api_key(), secret.api_key);
    assert!(
        got.session_token.is_some(),
        "a stored session token reads back"
    );
    assert_eq!(
        creds.session_token(),
        Some(format!("st-rt-{}", run.token).as_str()),
        "the stored session token decrypts"
    );

    let mut vsphere = run.seal("rt-vs", Vendor::Vsphere);
    vsphere.allowed_regions = vec!["*".into()];
    vsphere.request_rate = 1000;
    run.create(&vsphere).await;
    let got = run.store.get(&vsphere.id).await.unwrap();
    assert_eq!(got, vsphere);
    assert_eq!(
        got.session_token, None,
        "no session token reads back as none"
    );
    let creds = run.cipher.decrypt_credentials(&got).expect("decrypts");
    assert_eq!(creds.session_token(), None);
    let mut bare = run.seal("rt-bare", Vendor::Huawei);
    bare.address = None;
    run.create(&bare).await;
    assert_eq!(run.store.get(&bare.id).await.unwrap().address, None);
}

async fn duplicates_conflict(run: &mut Run<'_>) {
    let first = run.seal("dup", Vendor::Tencent);
    run.create(&first).await;

    let same_key = run.seal("dup", Vendor::Tencent);
    assert_ne!(same_key.id, first.id);
    let err = run
        .store
        .create(&same_key)
        .await
        .expect_err("duplicate api_key");
    assert_eq!(
        err.kind(),
        ErrorKind::Conflict,
        "same vendor and api_key: {err}"
    );
    let err = run.store.get(&same_key.id).await.expect_err("not stored");
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "a refused secret is not stored"
    );

    let mut same_id = run.seal("dup-other", Vendor::Tencent);
    same_id.id.clone_from(&first.id);
    let err = run.store.create(&same_id).await.expect_err("duplicate id");
    assert_eq!(err.kind(), ErrorKind::Conflict, "same id: {err}");
    assert_eq!(run.store.get(&first.id).await.unwrap(), first, "first kept");

    let other_vendor = run.seal("dup", Vendor::Huawei);
    run.create(&other_vendor).await;
    assert_eq!(run.store.get(&other_vendor.id).await.unwrap(), other_vendor);
}

async fn unknown_ids_are_not_found(run: &Run<'_>) {
    let id = uuid::Uuid::new_v4().to_string();
    let err = run.store.get(&id).await.expect_err("unknown id");
    assert_eq!(err.kind(), ErrorKind::NotFound, "get: {err}");
    assert!(err.message().contains(&id), "the error names the id: {err}");
    let err = run.store.delete(&id).await.expect_err("unknown id");
    assert_eq!(err.kind(), ErrorKind::NotFound, "delete: {err}");
    let err = run
        .store
        .replace_ciphertexts(
            &id,
            &Ciphertexts::new("v1:00000000:AAAA", None),
            &Ciphertexts::new("v1:00000000:BBBB", None),
        )
        .await
        .expect_err("unknown id");
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "replace_ciphertexts: {err}"
    );
}

async fn delete_removes(run: &mut Run<'_>) {
    let secret = run.seal("del", Vendor::Aliyun);
    run.create(&secret).await;
    run.store.delete(&secret.id).await.expect("delete");
    let err = run.store.get(&secret.id).await.expect_err("deleted");
    assert_eq!(err.kind(), ErrorKind::NotFound, "get after delete: {err}");
    let err = run
        .store
        .delete(&secret.id)
        .await
        .expect_err("deleted twice");
    assert_eq!(err.kind(), ErrorKind::NotFound, "delete twice: {err}");
    assert_eq!(
        run.total(&secret.id).await,
        0,
        "a deleted secret is not listed"
    );
    // Its api_key is free again.
    let again = run.seal("del", Vendor::Aliyun);
    run.create(&again).await;
}

async fn listing_is_masked_paged_and_ordered(run: &mut Run<'_>) {
    let base = Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap();
    let offsets = [3_000_001, 1_000_000, 1_000_000, 0, 2_000_123];
    let mut secrets = Vec::new();
    for (i, micros) in offsets.into_iter().enumerate() {
        let mut s = run.seal(&format!("page{i}"), Vendor::ALL[i % Vendor::ALL.len()]);
        s.created_at = (base + Duration::microseconds(micros)).trunc_subsecs(6);
        run.create(&s).await;
        secrets.push(s);
    }
    let mut expected: Vec<&Secret> = secrets.iter().collect();
    expected.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let expected_ids: Vec<&str> = expected.iter().map(|s| s.id.as_str()).collect();

    assert!(
        secrets.iter().any(|s| s.session_token.is_some())
            && secrets.iter().any(|s| s.session_token.is_none()),
        "listed with and without a session token"
    );
    let keywords = format!("{}-page", run.token);
    let mut listed = Vec::new();
    for (page_number, size) in [(1, 2), (2, 2), (3, 1), (4, 0)] {
        let page = run
            .store
            .list(&SecretQuery {
                page_size: 2,
                page_number,
                keywords: Some(keywords.clone()),
            })
            .await
            .expect("list");
        assert_eq!(page.total, 5, "total does not depend on the page");
        assert_eq!(page.items.len(), size, "page {page_number} size");
        listed.extend(page.items);
    }
    let listed_ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        listed_ids, expected_ids,
        "ordered by created_at then id, no repeats"
    );

    let json = serde_json::to_string(&listed).expect("listing serializes");
    assert!(
        !json.contains("st-page"),
        "the listing contains a session token in clear"
    );
    for (masked, secret) in listed.iter().zip(&expected) {
        assert_eq!(
            *masked,
            secret.masked(),
            "a listed secret is the masked secret"
        );
        assert_eq!(masked.api_secret, MASKED_API_SECRET);
        assert_eq!(masked.api_key, mask_api_key(&secret.api_key));
        assert_eq!(masked.session_token_set, secret.session_token.is_some());
        if let Some(token) = &secret.session_token {
            let b64 = token.rsplit(':').next().unwrap();
            assert!(
                !json.contains(b64),
                "the listing contains session token ciphertext bytes"
            );
        }
        assert!(
            !json.contains(&secret.api_secret),
            "the listing contains a ciphertext"
        );
        let b64 = secret.api_secret.rsplit(':').next().unwrap();
        assert!(!json.contains(b64), "the listing contains ciphertext bytes");
        assert!(
            !json.contains(&secret.api_key),
            "the listing shows an api_key in clear"
        );
    }
}

async fn keywords_filter(run: &mut Run<'_>) {
    let aliyun = run.seal("kw-a", Vendor::Aliyun);
    let tencent = run.seal("kw-t", Vendor::Tencent);
    run.create(&aliyun).await;
    run.create(&tencent).await;
    let token = run.token.clone();

    assert_eq!(
        run.total(&format!("{token}-kw-")).await,
        2,
        "description keyword"
    );
    assert_eq!(
        run.total(&format!("CONFORMANCE {}-KW-", token.to_ascii_uppercase()))
            .await,
        2,
        "keywords ignore ASCII case"
    );
    // Keywords match the masked key only, so a key cannot be recovered by counting
    // matches: its middle finds nothing, its masked form finds it.
    let key = &aliyun.api_key;
    // `AK<token><tag>`: past its first two characters, a text only the key holds.
    assert_eq!(
        run.total(&key[2..]).await,
        0,
        "a fragment of a key finds nothing"
    );
    assert_eq!(run.total(key).await, 0, "nor does the whole key");
    // (Other suites sharing the store may have keys masked alike.)
    assert!(
        run.total(&crate::mask_api_key(key)).await >= 1,
        "the masked key finds its secret"
    );
    assert_eq!(run.total(&tencent.id).await, 1, "id keyword");
    assert_eq!(run.total(&format!("{token}-nothing")).await, 0, "no match");
    assert_eq!(
        run.total(&format!("{token}%")).await,
        0,
        "% is not a wildcard"
    );
    assert_eq!(
        run.total(&format!("{token}_kw")).await,
        0,
        "_ is not a wildcard"
    );
    assert_eq!(
        run.total(&format!("{token}' OR '1'='1")).await,
        0,
        "keywords are data, not syntax"
    );

    // Vendor keyword: the shared store may hold many tencent secrets; find ours and make
    // sure the aliyun one of this run is not among them.
    let mut found = false;
    let mut page_number = 1;
    loop {
        let page = run
            .store
            .list(&SecretQuery {
                page_size: 1000,
                page_number,
                keywords: Some("TENCENT".into()),
            })
            .await
            .expect("list");
        for item in &page.items {
            assert_ne!(item.id, aliyun.id, "vendor keyword matched another vendor");
            found |= item.id == tencent.id;
        }
        if page.items.len() < 1000 {
            break;
        }
        page_number += 1;
    }
    assert!(found, "vendor keyword");
}

async fn invalid_queries_are_refused(run: &Run<'_>) {
    for (query, field) in [
        (
            SecretQuery {
                page_size: 0,
                ..SecretQuery::default()
            },
            "page_size",
        ),
        (
            SecretQuery {
                page_size: 1001,
                ..SecretQuery::default()
            },
            "page_size",
        ),
        (
            SecretQuery {
                page_number: 0,
                ..SecretQuery::default()
            },
            "page_number",
        ),
    ] {
        let err = run.store.list(&query).await.expect_err("invalid query");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{query:?}: {err}");
        assert_eq!(err.field(), Some(field), "{query:?}: {err}");
    }
    let full = SecretQuery {
        page_size: 1000,
        ..SecretQuery::default()
    };
    run.store
        .list(&full)
        .await
        .expect("page_size 1000 is valid");
}

async fn replace_is_compare_and_swap(run: &mut Run<'_>) {
    let secret = run.seal("cas", Vendor::Huawei);
    run.create(&secret).await;
    let current = secret.ciphertexts();
    assert!(current.session_token.is_some());
    let fresh = Ciphertexts::new(
        run.cipher
            .encrypt_api_secret(&secret, b"new value")
            .unwrap(),
        Some(
            run.cipher
                .encrypt_session_token(&secret, b"new token")
                .unwrap(),
        ),
    );

    // Each ciphertext is compared: either one stale (or a token expected absent) is a
    // conflict, and nothing changes.
    let wrong_secret = run.cipher.encrypt_api_secret(&secret, b"sk-cas").unwrap();
    let wrong_token = run
        .cipher
        .encrypt_session_token(&secret, b"st-cas")
        .unwrap();
    for (what, expected) in [
        (
            "a stale api_secret",
            Ciphertexts::new(wrong_secret.clone(), current.session_token.clone()),
        ),
        (
            "a stale session_token",
            Ciphertexts::new(current.api_secret.clone(), Some(wrong_token)),
        ),
        (
            "a session_token expected absent",
            Ciphertexts::new(current.api_secret.clone(), None),
        ),
    ] {
        let err = run
            .store
            .replace_ciphertexts(&secret.id, &expected, &fresh)
            .await
            .expect_err(what);
        assert_eq!(err.kind(), ErrorKind::Conflict, "{what}: {err}");
        assert_eq!(
            run.store.get(&secret.id).await.unwrap(),
            secret,
            "unchanged on conflict ({what})"
        );
    }

    run.store
        .replace_ciphertexts(&secret.id, &current, &fresh)
        .await
        .expect("replace with the current values expected");
    let got = run.store.get(&secret.id).await.unwrap();
    assert_eq!(got.ciphertexts(), fresh, "both ciphertexts replaced");
    assert_eq!(
        Secret {
            api_secret: secret.api_secret.clone(),
            session_token: secret.session_token.clone(),
            ..got.clone()
        },
        secret,
        "nothing but the ciphertexts changes"
    );
    let creds = run.cipher.decrypt_credentials(&got).unwrap();
    assert_eq!(
        (creds.api_secret(), creds.session_token()),
        ("new value", Some("new token"))
    );

    let err = run
        .store
        .replace_ciphertexts(&secret.id, &current, &current)
        .await
        .expect_err("the old values are stale now");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(
        run.store.get(&secret.id).await.unwrap().ciphertexts(),
        fresh
    );
    run.store
        .replace_ciphertexts(&secret.id, &fresh, &fresh)
        .await
        .expect("replacing with the same ciphertexts succeeds");

    // Without a token: expected absent, kept absent; one expected present conflicts.
    let mut bare = run.new_secret("cas-bare", Vendor::Tencent);
    bare.session_token = None;
    let bare = bare.seal(run.cipher).unwrap();
    run.create(&bare).await;
    let err = run
        .store
        .replace_ciphertexts(
            &bare.id,
            &Ciphertexts::new(bare.api_secret.clone(), Some(fresh.api_secret.clone())),
            &fresh,
        )
        .await
        .expect_err("a session_token expected present");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let renewed = Ciphertexts::new(
        run.cipher.encrypt_api_secret(&bare, b"bare value").unwrap(),
        None,
    );
    run.store
        .replace_ciphertexts(&bare.id, &bare.ciphertexts(), &renewed)
        .await
        .expect("replace without a token");
    let got = run.store.get(&bare.id).await.unwrap();
    assert_eq!(got.ciphertexts(), renewed);
    assert_eq!(got.session_token, None);
}

async fn update_is_compare_and_swap(run: &mut Run<'_>) {
    let secret = run.seal("upd", Vendor::Aliyun);
    run.create(&secret).await;
    let other = run.seal("upd-other", Vendor::Aliyun);
    run.create(&other).await;
    let token = &run.token;

    // Every field a patch may change, the credentials included.
    let patch = SecretPatch::default()
        .with_description(format!("updated {token}"))
        .with_allowed_regions(["ap-southeast-1"])
        .with_request_rate(11)
        .with_address(format!("https://upd2.endpoint.example/{token}"))
        .with_allow_insecure_http(false)
        .with_tls_ca_pem("")
        .with_tls_skip_verify(false)
        .with_credentials(format!("AK{token}upd-new"), "sk-upd-new")
        .with_session_token("st-upd-new");
    let changed = secret.patched(patch, run.cipher).expect("patched");
    run.store
        .update(&changed, &secret.ciphertexts())
        .await
        .expect("update with the current ciphertexts expected");
    let got = run.store.get(&secret.id).await.unwrap();
    assert_eq!(got, changed, "every field is stored");
    assert_eq!(
        got.created_at, secret.created_at,
        "the creation time is kept"
    );
    assert_eq!(got.tls_ca_pem, None, "a blank PEM removes it");
    let creds = run.cipher.decrypt_credentials(&got).unwrap();
    assert_eq!(
        (creds.api_key(), creds.api_secret(), creds.session_token()),
        (
            format!("AK{token}upd-new").as_str(),
            "sk-upd-new",
            Some("st-upd-new")
        ),
        "the stored secret decrypts under its new binding"
    );
    // Listings and keywords see the new description and the new masked key.
    assert_eq!(run.total(&format!("updated {token}")).await, 1);
    let new_masked = mask_api_key(&format!("AK{token}upd-new"));
    assert!(
        run.total(&new_masked).await >= 1,
        "the new masked key is searched"
    );

    // The old ciphertexts are stale: a conflict, and nothing changes.
    let stale = secret
        .patched(SecretPatch::default().with_description("stale"), run.cipher)
        .unwrap();
    let err = run
        .store
        .update(&stale, &secret.ciphertexts())
        .await
        .expect_err("stale ciphertexts");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(run.store.get(&secret.id).await.unwrap(), changed);

    // The API key of another secret of the vendor: a conflict.
    let taken = changed
        .patched(
            SecretPatch::default().with_credentials(other.api_key.clone(), "sk-taken"),
            run.cipher,
        )
        .unwrap();
    let err = run
        .store
        .update(&taken, &changed.ciphertexts())
        .await
        .expect_err("a taken api_key");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(run.store.get(&secret.id).await.unwrap(), changed);

    // An update that changes nothing but the ciphertexts (a patch re-encrypts).
    let same = changed.patched(SecretPatch::default(), run.cipher).unwrap();
    assert_ne!(same.ciphertexts(), changed.ciphertexts(), "fresh nonces");
    run.store
        .update(&same, &changed.ciphertexts())
        .await
        .expect("an empty patch");
    assert_eq!(run.store.get(&secret.id).await.unwrap(), same);

    let mut unknown = same.clone();
    unknown.id = format!("missing-{token}");
    let err = run
        .store
        .update(&unknown, &same.ciphertexts())
        .await
        .expect_err("unknown id");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// The scheduled sync of `id` among those due at `now`, if it is.
async fn due(store: &dyn SecretStore, id: &str, now: chrono::DateTime<Utc>) -> Option<DueSync> {
    store
        .due_syncs(now, 10_000)
        .await
        .expect("due_syncs")
        .into_iter()
        .find(|d| d.secret_id == id)
}

async fn schedules_are_claimed_once(store: Arc<dyn SecretStore>, run: &mut Run<'_>) {
    let secret = run.seal("sched", Vendor::Tencent);
    run.create(&secret).await;
    let created = secret.created_at;
    let every = secret
        .sync_interval
        .expect("the suite's secrets have a schedule");
    assert_eq!(
        secret.next_sync_at,
        Some(created),
        "a new schedule is due at once"
    );
    let stored = run.store.get(&secret.id).await.unwrap();
    assert_eq!(
        (
            stored.sync_interval,
            stored.next_sync_at,
            stored.sync_failures
        ),
        (Some(every), Some(created), 0),
        "the schedule is stored"
    );

    assert_eq!(
        due(run.store, &secret.id, created - Duration::seconds(1)).await,
        None,
        "not due before its time"
    );
    let found = due(run.store, &secret.id, created + Duration::seconds(1))
        .await
        .expect("due once its time has come");
    assert_eq!(found, DueSync::new(secret.id.clone(), created, every, 0));
    let limited = run
        .store
        .due_syncs(created + Duration::seconds(1), 1)
        .await
        .unwrap();
    assert!(limited.len() <= 1, "at most `limit`: {limited:?}");

    // Sixteen claimers of one due sync: one wins.
    let next = created + Duration::seconds(300);
    let claims = (0..16).map(|_| {
        let store = Arc::clone(&store);
        let id = secret.id.clone();
        tokio::spawn(async move { store.claim_sync(&id, created, next).await })
    });
    let mut won = 0;
    for claim in claims {
        if claim.await.expect("claim task").expect("claim_sync") {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one claimer of a due sync wins");
    let claimed = run.store.get(&secret.id).await.unwrap();
    assert_eq!(claimed.next_sync_at, Some(next), "the claim moved it");
    assert_eq!(
        due(run.store, &secret.id, created + Duration::seconds(1)).await,
        None
    );
    assert!(
        !run.store
            .claim_sync(&secret.id, created, next)
            .await
            .unwrap(),
        "a claim seen stale is refused"
    );
    assert!(
        !run.store
            .claim_sync(&format!("missing-{}", run.token), created, next)
            .await
            .unwrap(),
        "an unknown secret is not claimed"
    );

    // A failure pushes the next sync back, never forward.
    let later = next + Duration::seconds(600);
    run.store
        .record_sync_outcome(&secret.id, 3, Some(later))
        .await
        .unwrap();
    let got = run.store.get(&secret.id).await.unwrap();
    assert_eq!((got.sync_failures, got.next_sync_at), (3, Some(later)));
    run.store
        .record_sync_outcome(&secret.id, 4, Some(next))
        .await
        .unwrap();
    let got = run.store.get(&secret.id).await.unwrap();
    assert_eq!((got.sync_failures, got.next_sync_at), (4, Some(later)));
    run.store
        .record_sync_outcome(&secret.id, 0, None)
        .await
        .unwrap();
    assert_eq!(run.store.get(&secret.id).await.unwrap().sync_failures, 0);
    run.store
        .record_sync_outcome(&format!("missing-{}", run.token), 1, Some(later))
        .await
        .expect("an unknown secret is no error");

    // An update read before a claim keeps the claim when the schedule is the same...
    let read = run.store.get(&secret.id).await.unwrap();
    let claimed_at = later + Duration::seconds(300);
    assert!(run
        .store
        .claim_sync(&secret.id, later, claimed_at)
        .await
        .unwrap());
    let patched = read
        .patched(
            SecretPatch::default().with_description("rescheduled"),
            run.cipher,
        )
        .unwrap();
    run.store
        .update(&patched, &read.ciphertexts())
        .await
        .unwrap();
    let got = run.store.get(&secret.id).await.unwrap();
    assert_eq!(
        got.next_sync_at,
        Some(claimed_at),
        "an update that keeps the schedule keeps its claims"
    );
    // ...and takes the new due time, with no failures, when the schedule changes.
    run.store
        .record_sync_outcome(&secret.id, 2, None)
        .await
        .unwrap();
    let read = run.store.get(&secret.id).await.unwrap();
    let hourly = SyncInterval::new(std::time::Duration::from_secs(3600)).unwrap();
    let patched = read
        .patched(
            SecretPatch::default().with_sync_interval(Some(hourly)),
            run.cipher,
        )
        .unwrap();
    run.store
        .update(&patched, &read.ciphertexts())
        .await
        .unwrap();
    let got = run.store.get(&secret.id).await.unwrap();
    assert_eq!(
        (got.sync_interval, got.next_sync_at, got.sync_failures),
        (Some(hourly), patched.next_sync_at, 0),
        "a changed schedule is written"
    );
    // Removed: never due.
    let patched = got
        .patched(SecretPatch::default().with_sync_interval(None), run.cipher)
        .unwrap();
    run.store
        .update(&patched, &got.ciphertexts())
        .await
        .unwrap();
    let got = run.store.get(&secret.id).await.unwrap();
    assert_eq!((got.sync_interval, got.next_sync_at), (None, None));
    assert_eq!(
        due(run.store, &secret.id, Utc::now() + Duration::days(30)).await,
        None
    );
    assert!(
        !run.store
            .claim_sync(&secret.id, created, next)
            .await
            .unwrap(),
        "no schedule, no claim"
    );
}

async fn rotation(run: &mut Run<'_>) {
    let (old_key, new_key) = (Cipher::generate_key(), Cipher::generate_key());
    let old = Cipher::new(old_key);
    let rotating = Cipher::new(new_key).with_decryption_key(old_key);
    let new_only = Cipher::new(new_key);

    let mut secrets = Vec::new();
    for (i, vendor) in [Vendor::Aliyun, Vendor::Vsphere].into_iter().enumerate() {
        let s = run
            .new_secret(&format!("rot{i}"), vendor)
            .seal(&old)
            .unwrap();
        run.create(&s).await;
        secrets.push(s);
    }
    // Its API secret under the new key already, its session token still under the old.
    let s = run.seal("rot-token", Vendor::Tencent);
    run.create(&s).await;
    let half = Ciphertexts::new(
        new_only.encrypt_api_secret(&s, b"half-rotated").unwrap(),
        Some(old.encrypt_session_token(&s, b"old token").unwrap()),
    );
    run.store
        .replace_ciphertexts(&s.id, &s.ciphertexts(), &half)
        .await
        .expect("replace");
    let s = run.store.get(&s.id).await.unwrap();
    assert_eq!(
        Cipher::key_id_of(&s.api_secret),
        Some(new_only.active_key_id())
    );
    secrets.push(s);
    for s in &secrets {
        let outcome = rotate_secret(run.store, &rotating, &s.id)
            .await
            .expect("rotate");
        assert_eq!(
            outcome,
            Rotation::Rotated,
            "a secret under an old key is rotated"
        );
        let got = run.store.get(&s.id).await.unwrap();
        assert_eq!(
            Cipher::key_id_of(&got.api_secret),
            Some(new_only.active_key_id())
        );
        let creds = new_only
            .decrypt_credentials(&got)
            .expect("the new key alone decrypts a rotated secret");
        let before = rotating.decrypt_credentials(s).unwrap();
        assert_eq!(
            creds.api_secret(),
            before.api_secret(),
            "rotation keeps the value"
        );
        assert_eq!(
            creds.session_token(),
            before.session_token(),
            "rotation keeps the session token"
        );
        assert_eq!(got.session_token.is_some(), s.session_token.is_some());
        if let Some(token) = &got.session_token {
            assert_eq!(
                Cipher::key_id_of(token),
                Some(new_only.active_key_id()),
                "the session token is re-encrypted"
            );
            assert_ne!(Some(token), s.session_token.as_ref());
        }
        let again = rotate_secret(run.store, &rotating, &s.id).await.unwrap();
        assert_eq!(
            again,
            Rotation::AlreadyCurrent,
            "a second rotation changes nothing"
        );
    }
}

async fn concurrent_creates_of_one_key(store: Arc<dyn SecretStore>, run: &mut Run<'_>) {
    let contenders: Vec<Secret> = (0..8).map(|_| run.seal("race", Vendor::Aliyun)).collect();
    let tasks: Vec<_> = contenders
        .iter()
        .cloned()
        .map(|s| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.create(&s).await.map(|()| s.id) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.expect("create task") {
            Ok(id) => winners.push(id),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "losers conflict: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of concurrent duplicates is stored"
    );
    run.created.extend(winners);
    assert_eq!(run.total(&format!("{}-race", run.token)).await, 1);

    // Distinct keys created concurrently are all stored.
    let distinct: Vec<Secret> = (0..8)
        .map(|i| run.seal(&format!("par{i}"), Vendor::ALL[i % Vendor::ALL.len()]))
        .collect();
    let tasks: Vec<_> = distinct
        .iter()
        .cloned()
        .map(|s| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.create(&s).await })
        })
        .collect();
    for t in tasks {
        t.await
            .expect("create task")
            .expect("distinct keys do not conflict");
    }
    run.created.extend(distinct.iter().map(|s| s.id.clone()));
    let ids: HashSet<&str> = distinct.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 8);
    assert_eq!(run.total(&format!("{}-par", run.token)).await, 8);
}
