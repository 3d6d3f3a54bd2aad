//! The simulator checks requests like the real service: a replayed nonce and a stale
//! date are rejected with the service's codes. Requests here are signed by hand with the
//! public signer, so the two independent ACS3 implementations also check each other.

use cmdb_provider_aliyun::sign::{canonical_query, hex_sha256, sign, SigningRequest};
use cmdb_testkit::aliyun::SimulatedAliyun;
use serde_json::Value;

async fn send(sim: &SimulatedAliyun, date: &str, nonce: &str) -> (u16, Value) {
    let query = vec![
        ("RegionId".to_owned(), "cn-hangzhou".to_owned()),
        ("MaxResults".to_owned(), "10".to_owned()),
    ];
    let url: reqwest::Url = format!("{}/?{}", sim.uri(), canonical_query(&query))
        .parse()
        .unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let body_sha256 = hex_sha256(b"");
    let headers: Vec<(String, String)> = [
        ("host", host.as_str()),
        ("x-acs-action", "DescribeInstances"),
        ("x-acs-version", "2014-05-26"),
        ("x-acs-date", date),
        ("x-acs-signature-nonce", nonce),
        ("x-acs-content-sha256", body_sha256.as_str()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let signature = sign(
        &SigningRequest {
            method: "POST",
            path: "/",
            query: &query,
            headers: &headers,
            body_sha256: &body_sha256,
        },
        &sim.access_key_id(),
        &sim.access_key_secret(),
    );
    let mut request = reqwest::Client::new().post(url).body(Vec::<u8>::new());
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        request = request.header(k, v);
    }
    let response = request
        .header("authorization", signature.authorization)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn now_minus(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[tokio::test]
async fn replayed_nonces_and_stale_dates_are_rejected() {
    let sim = SimulatedAliyun::start("cn-hangzhou", 3).await;

    let (status, body) = send(&sim, &now_minus(0), "nonce-0001").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Instances"]["Instance"].as_array().unwrap().len(), 3);
    assert_eq!(body["TotalCount"], 3);

    let (status, body) = send(&sim, &now_minus(0), "nonce-0001").await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("SignatureNonceUsed"))
    );

    let (status, body) = send(&sim, &now_minus(20), "nonce-0002").await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("InvalidTimeStamp.Expired"))
    );
    assert!(body["RequestId"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(body["Recommend"].as_str().is_some());

    // Ten minutes off is within the service's 15-minute window.
    let (status, body) = send(&sim, &now_minus(10), "nonce-0003").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sim.answers(),
        [
            "DescribeInstances",
            "SignatureNonceUsed",
            "InvalidTimeStamp.Expired",
            "DescribeInstances"
        ]
    );
}
