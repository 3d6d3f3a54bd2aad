//! A process whose system has no root certificate (a container without a CA bundle,
//! here `SSL_CERT_FILE` naming an empty file) verifies with the Mozilla roots compiled in.
//! A test binary of its own, with one test: the choice is made once per process, and the
//! environment is changed before anything reads it.

use cmdb_http::{builtin_roots, BuiltinRoots, DefaultClassifier, HttpClient, HttpConfig};

#[test]
fn without_system_roots_the_compiled_in_ones_are_used() {
    let empty = std::env::temp_dir().join(format!("cmdb-empty-ca-{}.pem", std::process::id()));
    std::fs::write(&empty, b"").unwrap();
    std::env::set_var("SSL_CERT_FILE", &empty);
    std::env::remove_var("SSL_CERT_DIR");
    assert_eq!(builtin_roots(), BuiltinRoots::Webpki);
    HttpClient::new(HttpConfig::default(), None, DefaultClassifier::default())
        .expect("a client builds with the compiled-in roots");
    let _ = std::fs::remove_file(empty);
}
