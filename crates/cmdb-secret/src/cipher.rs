//! AES-256-GCM encryption of API secrets, with key ids so keys can be rotated.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cmdb_core::{Error, ErrorKind, Result};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::credentials::Credentials;
use crate::secret::Secret;

/// The environment variable holding the active key (base64 of 32 bytes).
pub(crate) const ENCRYPT_KEY_VAR: &str = "CMDB_ENCRYPT_KEY";
/// The environment variable holding old keys still accepted for decryption.
pub(crate) const DECRYPT_KEYS_VAR: &str = "CMDB_DECRYPT_KEYS";

/// Prefix of the ciphertext format; a new format gets a new version.
const VERSION_PREFIX: &str = "v1:";
/// Prefix of an API secret bound to its secret's [`Secret::binding`] (the same
/// container as `v1`, with the binding as associated data). `v1` API secrets were bound
/// to the secret's id alone; [`rotate_secrets`](crate::rotate_secrets) re-encrypts them.
const BOUND_PREFIX: &str = "v2:";
/// What the binding of a session token ends with, so that the token's ciphertext and
/// the API secret's are bound to different associated data (see [`Cipher`]).
const SESSION_TOKEN_SUFFIX: &str = "|session_token";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// One AES-256 key, its id and a fingerprint to spot the same key loaded twice.
#[derive(Clone)]
struct CipherKey {
    id: String,
    fingerprint: [u8; 32],
    aead: Aes256Gcm,
}

impl CipherKey {
    fn new(key: &[u8; 32]) -> CipherKey {
        let fingerprint: [u8; 32] = Sha256::digest(key).into();
        CipherKey {
            // 8 hex digits: enough to tell a handful of keys apart; a collision only
            // means trying two keys, since decryption tries every key with the id.
            id: hex::encode(&fingerprint[..4]),
            fingerprint,
            aead: Aes256Gcm::new(key.into()),
        }
    }
}

/// AES-256-GCM with key ids: one active key encrypts, and any loaded key (the active
/// one and older ones kept for rotation) decrypts.
///
/// A ciphertext is the text `<version>:<key id>:<base64(nonce || ciphertext || tag)>`,
/// with a fresh random 96-bit nonce per encryption. The key id is the first 8 hex digits
/// of the SHA-256 of the key. The associated data is authenticated, so a ciphertext moved
/// onto another record, or a record whose bound fields changed, fails to decrypt.
///
/// The version says what the associated data is:
/// - `v1`: the text given to [`Cipher::encrypt`]. Stored API secrets written before 0.2
///   used this format with the secret's id alone as associated data; they still decrypt
///   ([`Cipher::decrypt_credentials`] warns), until
///   [`rotate_secrets`](crate::rotate_secrets) re-encrypts them as `v2`.
/// - `v2`: an API secret, bound to [`Secret::binding`]: a length-prefixed list of the
///   secret's id, vendor, API key, address and TLS settings, which itself starts with a
///   version tag. Only [`Cipher::encrypt_api_secret`] writes it, and only
///   [`Cipher::decrypt_credentials`] reads it; relabelling it `v1` does not decrypt.
///   A session token ([`Secret::session_token`]) is `v2` too, bound to the same binding
///   followed by `|session_token` ([`Cipher::encrypt_session_token`]): the binding is a
///   fixed number of length-prefixed fields, so no binding ends that way, and a token's
///   ciphertext put in place of the API secret's (or the reverse) does not decrypt.
///
/// `Debug` shows only key ids.
///
/// ```
/// use cmdb_secret::Cipher;
///
/// let old = Cipher::generate_key();
/// let new = Cipher::generate_key();
/// let before = Cipher::new(old).encrypt("secret-1", b"hunter2").unwrap();
///
/// let cipher = Cipher::new(new).with_decryption_key(old);
/// assert_eq!(&*cipher.decrypt("secret-1", &before).unwrap(), b"hunter2");
/// assert!(cipher.decrypt("secret-2", &before).is_err());
/// let after = cipher.encrypt("secret-1", b"hunter2").unwrap();
/// assert_eq!(Cipher::key_id_of(&after), Some(cipher.active_key_id()));
/// ```
#[derive(Clone)]
pub struct Cipher {
    /// `keys[0]` is the active key; the others only decrypt.
    keys: Vec<CipherKey>,
}

impl Cipher {
    /// A cipher whose active key is `key`.
    pub fn new(mut key: [u8; 32]) -> Cipher {
        let cipher = Cipher {
            keys: vec![CipherKey::new(&key)],
        };
        key.zeroize();
        cipher
    }

    /// A cipher whose active key is the base64 (standard alphabet) of 32 bytes, as in
    /// `CMDB_ENCRYPT_KEY`. Errors never contain the value.
    pub fn from_base64(key_b64: &str) -> Result<Cipher> {
        let key = decode_key(key_b64, ENCRYPT_KEY_VAR)?;
        Ok(Cipher {
            keys: vec![CipherKey::new(&key)],
        })
    }

    /// Adds an old key that still decrypts (and is re-encrypted from by
    /// [`rotate_secrets`](crate::rotate_secrets)). Adding a key already loaded changes
    /// nothing.
    pub fn with_decryption_key(mut self, mut key: [u8; 32]) -> Cipher {
        self.add_key(&key);
        key.zeroize();
        self
    }

    /// [`Cipher::with_decryption_key`] with the key in base64, as in `CMDB_DECRYPT_KEYS`.
    pub fn with_decryption_key_base64(mut self, key_b64: &str) -> Result<Cipher> {
        let key = decode_key(key_b64, DECRYPT_KEYS_VAR)?;
        self.add_key(&key);
        Ok(self)
    }

    /// A cipher from the environment: `CMDB_ENCRYPT_KEY` (required) is the active key, and
    /// `CMDB_DECRYPT_KEYS` (optional) lists old keys, comma-separated, kept for decryption.
    /// All keys are base64 of 32 bytes.
    pub fn from_env() -> Result<Cipher> {
        let var = |name: &'static str| match std::env::var(name) {
            Ok(v) => Ok(Some(Zeroizing::new(v))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(Error::invalid_field(name, "is not valid UTF-8"))
            }
        };
        let encrypt = var(ENCRYPT_KEY_VAR)?;
        let decrypt = var(DECRYPT_KEYS_VAR)?;
        Cipher::from_vars(
            encrypt.as_deref().map(String::as_str),
            decrypt.as_deref().map(String::as_str),
        )
    }

    /// [`Cipher::from_env`] with the variables' values given, so it can be tested without
    /// touching the process environment.
    pub(crate) fn from_vars(encrypt: Option<&str>, decrypt: Option<&str>) -> Result<Cipher> {
        let encrypt = encrypt.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            Error::invalid_field(
                ENCRYPT_KEY_VAR,
                "is not set: give the base64 of a 32-byte key (e.g. `openssl rand -base64 32`)",
            )
        })?;
        let mut cipher = Cipher::from_base64(encrypt)?;
        for (i, old) in decrypt.unwrap_or_default().split(',').enumerate() {
            if old.trim().is_empty() {
                continue;
            }
            cipher = cipher
                .with_decryption_key_base64(old)
                .map_err(|e| e.context(format!("entry {i}")))?;
        }
        Ok(cipher)
    }

    /// A cipher whose active key is kept in the file `path` (base64 of 32 bytes), created
    /// with a new random key, readable by the owner only (mode 0600), when it does not
    /// exist. Answers whether the file was created, so the caller can warn that the key
    /// must be kept (secrets encrypted with it are lost without it).
    pub fn load_or_create_key_file(path: &std::path::Path) -> Result<(Cipher, bool)> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let key = decode_key(&text, "key file").map_err(|e| e.context(&shown))?;
                Ok((Cipher::new(*key), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Zeroizing::new(Cipher::generate_key());
                let text = Zeroizing::new(BASE64.encode(*key));
                write_private(path, text.as_bytes()).map_err(|e| {
                    Error::new(
                        ErrorKind::Crypto,
                        format!("cannot create key file {shown}: {e}"),
                    )
                    .with_source(e)
                })?;
                Ok((Cipher::new(*key), true))
            }
            Err(e) => Err(Error::new(
                ErrorKind::Crypto,
                format!("cannot read key file {shown}: {e}"),
            )
            .with_source(e)),
        }
    }

    /// A new random key from the operating system's generator.
    pub fn generate_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        key
    }

    /// The id of the key that encrypts.
    pub fn active_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Encrypts `plaintext` under the active key with a fresh random nonce, authenticating
    /// `associated_data` too; see [`Cipher`] for the format.
    pub fn encrypt(&self, associated_data: &str, plaintext: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        self.encrypt_with_nonce(associated_data, plaintext, &nonce)
    }

    /// [`Cipher::encrypt`] with a given nonce. Never reuse a nonce with the same key:
    /// only tests pin one, to check the format against known answers.
    pub(crate) fn encrypt_with_nonce(
        &self,
        associated_data: &str,
        plaintext: &[u8],
        nonce: &[u8; NONCE_LEN],
    ) -> Result<String> {
        let key = &self.keys[0];
        let sealed = key
            .aead
            .encrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: plaintext,
                    aad: associated_data.as_bytes(),
                },
            )
            .map_err(|_| Error::new(ErrorKind::Crypto, "encryption failed"))?;
        let mut body = Vec::with_capacity(NONCE_LEN + sealed.len());
        body.extend_from_slice(nonce);
        body.extend_from_slice(&sealed);
        Ok(format!(
            "{VERSION_PREFIX}{}:{}",
            key.id,
            BASE64.encode(body)
        ))
    }

    /// Decrypts a ciphertext made by [`Cipher::encrypt`] with the same associated data.
    ///
    /// Every failure is [`ErrorKind::Crypto`]: a malformed text, a key id no loaded key
    /// has, a wrong key, tampered bytes or other associated data. Text that is not in the
    /// ciphertext format is never taken as clear text.
    pub fn decrypt(&self, associated_data: &str, ciphertext: &str) -> Result<Zeroizing<Vec<u8>>> {
        let malformed = || {
            Error::new(
                ErrorKind::Crypto,
                "malformed ciphertext: expected v1: or v2:<key id>:<base64>",
            )
        };
        let key_id = Cipher::key_id_of(ciphertext).ok_or_else(malformed)?;
        // Both prefixes are three bytes long.
        let b64 = &ciphertext[VERSION_PREFIX.len() + key_id.len() + 1..];
        let body = BASE64.decode(b64).map_err(|_| malformed())?;
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(malformed());
        }
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let mut candidates = self.keys.iter().filter(|k| k.id == key_id).peekable();
        if candidates.peek().is_none() {
            return Err(Error::new(
                ErrorKind::Crypto,
                format!(
                    "no loaded key has id {key_id} (active key {}); \
                     add the old key to {DECRYPT_KEYS_VAR}",
                    self.active_key_id()
                ),
            ));
        }
        for key in candidates {
            let payload = Payload {
                msg: sealed,
                aad: associated_data.as_bytes(),
            };
            if let Ok(plain) = key.aead.decrypt(Nonce::from_slice(nonce), payload) {
                return Ok(Zeroizing::new(plain));
            }
        }
        Err(Error::new(
            ErrorKind::Crypto,
            format!(
                "decryption with key {key_id} failed: wrong key, tampered data, \
                 or a ciphertext of another record"
            ),
        ))
    }

    /// The key id of a ciphertext, or `None` when the text is not in the ciphertext format.
    pub fn key_id_of(ciphertext: &str) -> Option<&str> {
        let rest = ciphertext
            .strip_prefix(VERSION_PREFIX)
            .or_else(|| ciphertext.strip_prefix(BOUND_PREFIX))?;
        let (id, body) = rest.split_once(':')?;
        let well_formed =
            !id.is_empty() && !body.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then_some(id)
    }

    /// Encrypts `plaintext` as `secret`'s API secret: format `v2`, bound to
    /// [`Secret::binding`] (its id, vendor, key, address and TLS settings).
    pub fn encrypt_api_secret(&self, secret: &Secret, plaintext: &[u8]) -> Result<String> {
        let sealed = self.encrypt(&secret.binding(), plaintext)?;
        Ok(format!("{BOUND_PREFIX}{}", &sealed[VERSION_PREFIX.len()..]))
    }

    /// Encrypts `plaintext` as `secret`'s session token: format `v2`, bound to
    /// [`Secret::binding`] followed by `|session_token`, so that it decrypts only as this
    /// secret's token, never as its API secret.
    pub fn encrypt_session_token(&self, secret: &Secret, plaintext: &[u8]) -> Result<String> {
        let sealed = self.encrypt(&session_token_binding(secret), plaintext)?;
        Ok(format!("{BOUND_PREFIX}{}", &sealed[VERSION_PREFIX.len()..]))
    }

    /// Whether `secret`'s API secret is in the legacy `v1` format, bound to its id only;
    /// [`rotate_secrets`](crate::rotate_secrets) re-encrypts it as `v2`.
    pub fn is_legacy_binding(secret: &Secret) -> bool {
        secret.api_secret.starts_with(VERSION_PREFIX)
    }

    /// Decrypts a stored secret's API secret: a `v2` ciphertext with
    /// [`Secret::binding`] as associated data, so a row whose address, key, vendor or TLS
    /// settings changed fails with [`ErrorKind::Crypto`]; a legacy `v1` one with the id.
    /// The session token, when the secret has one, is decrypted too (it is always `v2`)
    /// and fails the same way.
    pub fn decrypt_credentials(&self, secret: &Secret) -> Result<Credentials> {
        let plain = match secret.api_secret.strip_prefix(BOUND_PREFIX) {
            Some(rest) => self.decrypt(&secret.binding(), &format!("{VERSION_PREFIX}{rest}")),
            None => {
                tracing::warn!(
                    secret_id = %secret.id,
                    "secret encrypted in the legacy v1 format (bound to its id only); run \
                     rotate_secrets to bind it to its address and key"
                );
                self.decrypt(&secret.id, &secret.api_secret)
            }
        }
        .map_err(|e| {
            e.context(format!(
                "secret {} (a changed address, key, vendor or TLS setting also fails here)",
                secret.id
            ))
        })?;
        let api_secret = std::str::from_utf8(&plain).map_err(|_| {
            Error::new(
                ErrorKind::Crypto,
                format!(
                    "secret {}: the decrypted API secret is not UTF-8",
                    secret.id
                ),
            )
        })?;
        let credentials = Credentials::new(secret.api_key.clone(), api_secret);
        let Some(sealed) = &secret.session_token else {
            return Ok(credentials);
        };
        let plain = self.decrypt_session_token(secret, sealed)?;
        let token = std::str::from_utf8(&plain).map_err(|_| {
            Error::new(
                ErrorKind::Crypto,
                format!(
                    "secret {}: the decrypted session token is not UTF-8",
                    secret.id
                ),
            )
        })?;
        Ok(credentials.with_session_token(token))
    }

    /// Decrypts the ciphertext `sealed` of `secret`'s session token. Errors name the
    /// secret, never the token.
    fn decrypt_session_token(&self, secret: &Secret, sealed: &str) -> Result<Zeroizing<Vec<u8>>> {
        let context = || {
            format!(
                "secret {}: session token (a changed address, key, vendor or TLS setting \
                 also fails here)",
                secret.id
            )
        };
        // Tokens were never stored bound to the id alone: a `v1` one is refused.
        let Some(rest) = sealed.strip_prefix(BOUND_PREFIX) else {
            return Err(Error::new(
                ErrorKind::Crypto,
                "malformed ciphertext: expected v2:<key id>:<base64>",
            )
            .context(context()));
        };
        self.decrypt(
            &session_token_binding(secret),
            &format!("{VERSION_PREFIX}{rest}"),
        )
        .map_err(|e| e.context(context()))
    }

    fn add_key(&mut self, key: &[u8; 32]) {
        let key = CipherKey::new(key);
        if !self.keys.iter().any(|k| k.fingerprint == key.fingerprint) {
            self.keys.push(key);
        }
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let old: Vec<&str> = self.keys[1..].iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Cipher")
            .field("active_key_id", &self.active_key_id())
            .field("decryption_key_ids", &old)
            .finish()
    }
}

/// The associated data of `secret`'s session token.
fn session_token_binding(secret: &Secret) -> String {
    let mut binding = secret.binding();
    binding.push_str(SESSION_TOKEN_SUFFIX);
    binding
}

/// Decodes a base64 key of exactly 32 bytes; errors name `var`, never the value.
/// Creates `path` (never overwriting) with owner-only permissions and writes `bytes`.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn decode_key(key_b64: &str, var: &'static str) -> Result<Zeroizing<[u8; 32]>> {
    let decoded = Zeroizing::new(
        BASE64
            .decode(key_b64.trim())
            .map_err(|_| Error::invalid_field(var, "is not valid base64 (standard alphabet)"))?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if decoded.len() != key.len() {
        return Err(Error::invalid_field(
            var,
            format!("must decode to exactly 32 bytes, not {}", decoded.len()),
        ));
    }
    key.copy_from_slice(&decoded);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crypto_err<T: fmt::Debug>(r: Result<T>) -> Error {
        let e = r.expect_err("expected a crypto error");
        assert_eq!(e.kind(), ErrorKind::Crypto, "{e}");
        e
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test case 14.
    #[test]
    fn aes_gcm_matches_gcm_spec_test_case_14() {
        let aead = Aes256Gcm::new(&[0u8; 32].into());
        let out = aead
            .encrypt(
                Nonce::from_slice(&[0u8; 12]),
                Payload {
                    msg: &[0u8; 16],
                    aad: b"",
                },
            )
            .unwrap();
        assert_eq!(hex::encode(&out[..16]), "cea7403d4d606b6e074ec5d3baf39d18");
        assert_eq!(hex::encode(&out[16..]), "d0d1c8a799996bf0265b98b5d48ab919");
        let back = aead
            .decrypt(
                Nonce::from_slice(&[0u8; 12]),
                Payload {
                    msg: &out,
                    aad: b"",
                },
            )
            .unwrap();
        assert_eq!(back, vec![0u8; 16]);
    }

    /// McGrew & Viega test case 16: 256-bit key, 96-bit IV, 60-byte plaintext, AAD.
    #[test]
    fn aes_gcm_matches_gcm_spec_test_case_16() {
        let key = h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        let iv = h("cafebabefacedbaddecaf888");
        let p = h(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                   1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let a = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let aead = Aes256Gcm::new_from_slice(&key).unwrap();
        let out = aead
            .encrypt(Nonce::from_slice(&iv), Payload { msg: &p, aad: &a })
            .unwrap();
        let (c, t) = out.split_at(p.len());
        assert_eq!(
            hex::encode(c),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        );
        assert_eq!(hex::encode(t), "76fc6ece0f4e1768cddf8853bb2d551b");
        let back = aead
            .decrypt(Nonce::from_slice(&iv), Payload { msg: &out, aad: &a })
            .unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn key_id_is_the_sha256_prefix() {
        // SHA-256 of 32 zero bytes starts 66687aad.
        assert_eq!(Cipher::new([0; 32]).active_key_id(), "66687aad");
    }

    #[test]
    fn format_is_pinned_for_a_fixed_nonce() {
        // Test case 14 through the cipher: empty AAD, zero key, zero nonce, 16 zero bytes.
        let cipher = Cipher::new([0; 32]);
        let text = cipher
            .encrypt_with_nonce("", &[0u8; 16], &[0u8; 12])
            .unwrap();
        let body = h("000000000000000000000000\
                      cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
        assert_eq!(text, format!("v1:66687aad:{}", BASE64.encode(&body)));
        assert_eq!(
            text,
            "v1:66687aad:AAAAAAAAAAAAAAAAzqdAPU1ga24HTsXTuvOdGNDRyKeZmWvwJluYtdSKuRk="
        );
        assert_eq!(&*cipher.decrypt("", &text).unwrap(), &[0u8; 16]);

        // Test case 16 through the cipher: its AAD is binary, so use a text AAD of our own
        // and check the body decrypts with the bare primitive.
        let key: [u8; 32] = h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .try_into()
            .unwrap();
        let iv: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().unwrap();
        let text = Cipher::new(key)
            .encrypt_with_nonce("secret-id", b"hello", &iv)
            .unwrap();
        let (prefix, b64) = text.rsplit_once(':').unwrap();
        assert_eq!(
            prefix,
            format!("v1:{}", hex::encode(&Sha256::digest(key)[..4]))
        );
        let body = BASE64.decode(b64).unwrap();
        assert_eq!(&body[..12], &iv);
        let plain = Aes256Gcm::new(&key.into())
            .decrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: &body[12..],
                    aad: b"secret-id",
                },
            )
            .unwrap();
        assert_eq!(plain, b"hello");
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let cipher = Cipher::new(Cipher::generate_key());
        let a = cipher.encrypt("id-1", b"p@ss word").unwrap();
        let b = cipher.encrypt("id-1", b"p@ss word").unwrap();
        assert_ne!(a, b, "a fresh nonce per encryption");
        assert_eq!(&*cipher.decrypt("id-1", &a).unwrap(), b"p@ss word");
        assert_eq!(&*cipher.decrypt("id-1", &b).unwrap(), b"p@ss word");
        assert_eq!(
            &*cipher
                .decrypt("x", &cipher.encrypt("x", b"").unwrap())
                .unwrap(),
            b""
        );
        assert_ne!(Cipher::generate_key(), Cipher::generate_key());
    }

    #[test]
    fn wrong_key_fails() {
        let text = Cipher::new([1; 32]).encrypt("id", b"secret").unwrap();
        // Same key id, different key: simulate by rewriting the id to the other key's.
        let other = Cipher::new([2; 32]);
        let forged = text.replacen(Cipher::key_id_of(&text).unwrap(), other.active_key_id(), 1);
        let e = crypto_err(other.decrypt("id", &forged));
        assert!(!e.to_string().contains("secret"), "{e}");
        crypto_err(other.decrypt("id", &text));
    }

    #[test]
    fn other_associated_data_fails() {
        let cipher = Cipher::new([3; 32]);
        let text = cipher.encrypt("secret-a", b"value").unwrap();
        crypto_err(cipher.decrypt("secret-b", &text));
    }

    #[test]
    fn tampering_fails() {
        let cipher = Cipher::new([4; 32]);
        let text = cipher.encrypt("id", b"value").unwrap();
        let (prefix, b64) = text.rsplit_once(':').unwrap();
        let body = BASE64.decode(b64).unwrap();
        for i in [0, NONCE_LEN, body.len() - 1] {
            let mut bad = body.clone();
            bad[i] ^= 0x01;
            crypto_err(cipher.decrypt("id", &format!("{prefix}:{}", BASE64.encode(&bad))));
        }
        let truncated = BASE64.encode(&body[..body.len() - 1]);
        crypto_err(cipher.decrypt("id", &format!("{prefix}:{truncated}")));
    }

    #[test]
    fn unknown_key_id_fails_and_names_it() {
        let cipher = Cipher::new([5; 32]);
        let text = Cipher::new([6; 32]).encrypt("id", b"v").unwrap();
        let e = crypto_err(cipher.decrypt("id", &text));
        assert!(
            e.message().contains(Cipher::key_id_of(&text).unwrap()),
            "{e}"
        );
    }

    #[test]
    fn malformed_text_fails_and_is_never_clear_text() {
        let cipher = Cipher::new([7; 32]);
        let id = cipher.active_key_id().to_owned();
        let short = BASE64.encode([0u8; 27]);
        for bad in [
            "".to_owned(),
            "hunter2".to_owned(),
            format!("v2:{id}:AAAA"),
            format!("v1:{id}:"),
            format!("v1:{id}:not base64!"),
            format!("v1::{short}"),
            format!("v1:{id}:{short}"),
            format!("v1:zzzz:{}", BASE64.encode([0u8; 40])),
        ] {
            crypto_err(cipher.decrypt("id", &bad));
        }
        assert_eq!(Cipher::key_id_of("hunter2"), None);
        assert_eq!(Cipher::key_id_of("v1:abc:"), None);
        assert_eq!(Cipher::key_id_of("v1:0a1b2c3d:AAAA"), Some("0a1b2c3d"));
    }

    #[test]
    fn old_keys_decrypt_and_the_active_key_encrypts() {
        let old = Cipher::new([8; 32]);
        let text = old.encrypt("id", b"v").unwrap();
        let cipher = Cipher::new([9; 32]).with_decryption_key([8; 32]);
        assert_eq!(&*cipher.decrypt("id", &text).unwrap(), b"v");
        let fresh = cipher.encrypt("id", b"v").unwrap();
        assert_eq!(Cipher::key_id_of(&fresh), Some(cipher.active_key_id()));
        crypto_err(old.decrypt("id", &fresh));
        // The same key twice is kept once; the active key as an old key changes nothing.
        let twice = cipher
            .clone()
            .with_decryption_key([8; 32])
            .with_decryption_key([9; 32]);
        assert_eq!(twice.keys.len(), 2);
    }

    #[test]
    fn keys_from_base64_and_env_values() {
        let k1 = BASE64.encode([1u8; 32]);
        let k2 = BASE64.encode([2u8; 32]);
        let k3 = BASE64.encode([3u8; 32]);
        let c = Cipher::from_base64(&k1).unwrap();
        assert_eq!(c.active_key_id(), Cipher::new([1; 32]).active_key_id());

        let text2 = Cipher::new([2; 32]).encrypt("id", b"two").unwrap();
        let text3 = Cipher::new([3; 32]).encrypt("id", b"three").unwrap();
        let c = Cipher::from_vars(Some(&k1), Some(&format!(" {k2} ,,{k3}"))).unwrap();
        assert_eq!(&*c.decrypt("id", &text2).unwrap(), b"two");
        assert_eq!(&*c.decrypt("id", &text3).unwrap(), b"three");
        assert_eq!(c.active_key_id(), Cipher::new([1; 32]).active_key_id());
        Cipher::from_vars(Some(&k1), None).unwrap();
        Cipher::from_vars(Some(&k1), Some("")).unwrap();

        let e = Cipher::from_vars(None, Some(&k2)).unwrap_err();
        assert_eq!(e.field(), Some("CMDB_ENCRYPT_KEY"));
        let e = Cipher::from_vars(Some(&k1), Some("c2hvcnQ=")).unwrap_err();
        assert_eq!(e.field(), Some("CMDB_DECRYPT_KEYS"));
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let too_short = BASE64.encode(b"sixteen byte key");
        let too_long = BASE64.encode([9u8; 33]);
        for bad in [
            too_short.as_str(),
            too_long.as_str(),
            "not*base64*SECRETVALUE",
            "",
        ] {
            let e = Cipher::from_base64(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert_eq!(e.field(), Some("CMDB_ENCRYPT_KEY"));
            let shown = format!("{e} {e:?}");
            assert!(bad.is_empty() || !shown.contains(bad), "{shown}");
            assert!(!shown.contains("SECRETVALUE"));
        }
        let e = Cipher::new([0; 32])
            .with_decryption_key_base64(&too_short)
            .unwrap_err();
        assert_eq!(e.field(), Some("CMDB_DECRYPT_KEYS"));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("cmdb-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cmdb.db.key");
        let (first, created) = Cipher::load_or_create_key_file(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "owner-only key file");
        }
        let sealed = first.encrypt("id-1", b"s3cret").unwrap();
        let (again, created) = Cipher::load_or_create_key_file(&path).unwrap();
        assert!(!created);
        assert_eq!(again.active_key_id(), first.active_key_id());
        assert_eq!(&*again.decrypt("id-1", &sealed).unwrap(), b"s3cret");

        std::fs::write(&path, "not a key").unwrap();
        let e = Cipher::load_or_create_key_file(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            !e.to_string().contains("not a key"),
            "the content is not echoed: {e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_shows_only_key_ids() {
        let key = [0x42u8; 32];
        let c = Cipher::new([0; 32]).with_decryption_key(key);
        let shown = format!("{c:?}");
        let old_id = hex::encode(&Sha256::digest(key)[..4]);
        assert_eq!(
            shown,
            format!("Cipher {{ active_key_id: \"66687aad\", decryption_key_ids: [\"{old_id}\"] }}")
        );
        assert!(!shown.contains(&BASE64.encode(key)) && !shown.contains(&hex::encode(key)));
        assert!(!format!("{c:#?}").contains("4242"));
    }

    #[test]
    fn credentials_are_bound_to_the_secret_id() {
        let cipher = Cipher::new([10; 32]);
        let new = crate::NewSecret {
            vendor: cmdb_core::Vendor::Huawei,
            description: "d".into(),
            api_key: "AKHUAWEI00000001".into(),
            api_secret: Zeroizing::new("sk-value".into()),
            session_token: None,
            allowed_regions: vec!["*".into()],
            request_rate: None,
            address: None,
            allow_insecure_http: false,
            tls_ca_pem: None,
            tls_skip_verify: false,
            sync_interval: None,
        };
        let a = new.clone().seal(&cipher).unwrap();
        let mut b = new.seal(&cipher).unwrap();
        assert_eq!(
            cipher.decrypt_credentials(&a).unwrap().api_secret(),
            "sk-value"
        );
        // Moving a's ciphertext onto b must not decrypt.
        b.api_secret.clone_from(&a.api_secret);
        let e = crypto_err(cipher.decrypt_credentials(&b));
        assert!(e.message().contains(&b.id), "{e}");
    }

    #[test]
    fn credentials_are_bound_to_where_they_are_sent() {
        let cipher = Cipher::new([11; 32]);
        let sealed = crate::NewSecret {
            vendor: cmdb_core::Vendor::Vsphere,
            description: "d".into(),
            api_key: "administrator@vsphere.local".into(),
            api_secret: Zeroizing::new("vc-password".into()),
            session_token: None,
            allowed_regions: vec!["*".into()],
            request_rate: None,
            address: Some("https://vcenter.example.com".into()),
            allow_insecure_http: false,
            tls_ca_pem: None,
            tls_skip_verify: false,
            sync_interval: None,
        }
        .seal(&cipher)
        .unwrap();
        assert!(sealed.api_secret.starts_with("v2:"));
        assert_eq!(
            cipher.decrypt_credentials(&sealed).unwrap().api_secret(),
            "vc-password"
        );
        // A row changed in the database behind the store's back: each change of where
        // the password goes, or of how the endpoint is trusted, fails to decrypt.
        let changes: [fn(&mut Secret); 6] = [
            |s| s.address = Some("http://attacker.example".into()),
            |s| s.address = None,
            |s| s.api_key = "root".into(),
            |s| s.vendor = cmdb_core::Vendor::Aliyun,
            |s| s.tls_skip_verify = true,
            |s| s.tls_ca_pem = Some("-----BEGIN CERTIFICATE-----".into()),
        ];
        for change in changes {
            let mut changed = sealed.clone();
            change(&mut changed);
            crypto_err(cipher.decrypt_credentials(&changed));
        }
        let mut insecure = sealed.clone();
        insecure.allow_insecure_http = true;
        crypto_err(cipher.decrypt_credentials(&insecure));
    }

    #[test]
    fn a_legacy_secret_bound_to_its_id_still_decrypts() {
        let cipher = Cipher::new([12; 32]);
        let mut legacy = crate::NewSecret {
            vendor: cmdb_core::Vendor::Aliyun,
            description: "d".into(),
            api_key: "LTAI5tLegacyKey01".into(),
            api_secret: Zeroizing::new("legacy-secret".into()),
            session_token: None,
            allowed_regions: vec!["*".into()],
            request_rate: None,
            address: None,
            allow_insecure_http: false,
            tls_ca_pem: None,
            tls_skip_verify: false,
            sync_interval: None,
        }
        .seal(&cipher)
        .unwrap();
        // As an earlier version stored it: `v1:`, the id alone as associated data.
        legacy.api_secret = cipher.encrypt(&legacy.id, b"legacy-secret").unwrap();
        assert!(Cipher::is_legacy_binding(&legacy));
        assert_eq!(
            cipher.decrypt_credentials(&legacy).unwrap().api_secret(),
            "legacy-secret"
        );
        // A `v2` ciphertext relabelled `v1` does not decrypt: no downgrade.
        let mut relabelled = legacy.clone();
        relabelled.api_secret = cipher
            .encrypt_api_secret(&legacy, b"legacy-secret")
            .unwrap()
            .replacen("v2:", "v1:", 1);
        crypto_err(cipher.decrypt_credentials(&relabelled));
    }

    fn sts_secret(cipher: &Cipher, token: Option<&str>) -> Secret {
        let mut new = crate::NewSecret::new(cmdb_core::Vendor::Aliyun, "STS.NUgYrLnoC", "sts-sk")
            .with_description("assumed role")
            .with_allowed_regions(["*"])
            .with_address("https://ecs.example.com");
        if let Some(token) = token {
            new = new.with_session_token(token);
        }
        new.seal(cipher).unwrap()
    }

    #[test]
    fn a_session_token_round_trips_and_its_absence_too() {
        let cipher = Cipher::new([13; 32]);
        let with = sts_secret(&cipher, Some("CAIS-t0ken-value"));
        let sealed = with.session_token.as_deref().unwrap();
        assert!(sealed.starts_with("v2:"), "{sealed}");
        assert_eq!(Cipher::key_id_of(sealed), Some(cipher.active_key_id()));
        assert!(!sealed.contains("t0ken"));
        let creds = cipher.decrypt_credentials(&with).unwrap();
        assert_eq!(creds.api_secret(), "sts-sk");
        assert_eq!(creds.session_token(), Some("CAIS-t0ken-value"));

        let without = sts_secret(&cipher, None);
        assert_eq!(without.session_token, None);
        let creds = cipher.decrypt_credentials(&without).unwrap();
        assert_eq!(
            (creds.api_secret(), creds.session_token()),
            ("sts-sk", None)
        );
        // A blank token is no token.
        assert_eq!(sts_secret(&cipher, Some(" \t")).session_token, None);
    }

    #[test]
    fn a_session_token_and_an_api_secret_do_not_decrypt_in_each_others_place() {
        let cipher = Cipher::new([14; 32]);
        let sealed = sts_secret(&cipher, Some("CAIS-t0ken-value"));
        let token = sealed.session_token.clone().unwrap();

        // The token's ciphertext as the API secret.
        let mut swapped = sealed.clone();
        swapped.api_secret.clone_from(&token);
        let e = crypto_err(cipher.decrypt_credentials(&swapped));
        assert!(!e.to_string().contains("t0ken"), "{e}");
        // The API secret's ciphertext as the token.
        let mut swapped = sealed.clone();
        swapped.session_token = Some(sealed.api_secret.clone());
        let e = crypto_err(cipher.decrypt_credentials(&swapped));
        assert!(e.message().contains("session token"), "{e}");
        assert!(e.message().contains(&sealed.id), "{e}");
        // Both swapped.
        let mut swapped = sealed.clone();
        swapped.api_secret.clone_from(&token);
        swapped.session_token = Some(sealed.api_secret.clone());
        crypto_err(cipher.decrypt_credentials(&swapped));

        // Another secret's token.
        let other = sts_secret(&cipher, Some("another-token"));
        let mut moved = other.clone();
        moved.session_token.clone_from(&sealed.session_token);
        crypto_err(cipher.decrypt_credentials(&moved));

        // A token relabelled `v1`, or bound to the id alone, is refused.
        let mut relabelled = sealed.clone();
        relabelled.session_token = Some(token.replacen("v2:", "v1:", 1));
        crypto_err(cipher.decrypt_credentials(&relabelled));
        let mut by_id = sealed.clone();
        by_id.session_token = Some(cipher.encrypt(&sealed.id, b"CAIS-t0ken-value").unwrap());
        crypto_err(cipher.decrypt_credentials(&by_id));

        // The token is bound to where it is sent, as the API secret is.
        let mut redirected = sealed.clone();
        redirected.address = Some("https://attacker.example".into());
        redirected.api_secret = cipher.encrypt_api_secret(&redirected, b"sts-sk").unwrap();
        crypto_err(cipher.decrypt_credentials(&redirected));

        // Under another key: the error names the key id, never the token.
        let e = crypto_err(Cipher::new([15; 32]).decrypt_credentials(&sealed));
        assert!(!format!("{e} {e:?}").contains("t0ken"));
    }
}
