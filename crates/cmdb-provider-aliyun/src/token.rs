//! The top-level `NextToken` of a `DescribeInstances` answer, read without decoding the
//! answer, so that the next page is asked for before this one is decoded.
//!
//! Two quick reads, each stopping at the first `NextToken` member it meets:
//! - **From the end**, back over the members after the last array or object: the simple
//!   values (strings, numbers, `true`, `false`, `null`) and their keys. In a JSON object
//!   these are top-level members whatever comes before them, because inside a string a
//!   quote is always escaped and a backslash always paired. Answers that end with
//!   `NextToken`, `PageSize` or `TotalCount` after the instances are read this way
//!   without looking at the instances.
//! - **From the start** otherwise, following the top level of the object exactly (keys,
//!   colons, commas) and stepping over every other value by its structure: a string up to
//!   its closing quote, minding backslash escapes; an array or an object up to its matching
//!   bracket. When no `NextToken` is met the read goes on to the closing brace and
//!   checks that nothing but whitespace follows, so that an absent token is certain.
//!
//! Neither read checks what it steps over or what comes after the token it found: a
//! token is certain only for an answer that is JSON. The page is decoded in full
//! afterwards, and the caller compares the token decoded with the token read here (see
//! `AliyunHostProvider::pages`): an answer that is not JSON, or has the key twice, fails
//! there. Whatever a read cannot take as it is is [`Scan::Unknown`], and the caller asks
//! serde_json instead: a body that is not an object, a key with escapes
//! (`"Next\u0054oken"`), a `NextToken` that is not a plain string or `null`, nesting
//! deeper than [`MAX_DEPTH`].
//!
//! serde_json's pass over the same answer (everything but `NextToken` skipped as
//! `IgnoredAny`) took about four times the instructions of a read from the start over the
//! whole answer.

/// Levels of nesting below the top level the scan follows (one bit each in a `u128`);
/// deeper answers are left to serde_json.
const MAX_DEPTH: u32 = 127;

/// What [`next_token`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan<'a> {
    /// The answer's `NextToken`: `None` when absent, `null` or empty.
    Token(Option<&'a str>),
    /// The scan cannot tell; serde_json can.
    Unknown,
}

/// Reads the `NextToken` member of the JSON object `body`, ignoring any `NextToken` nested
/// deeper. Certain only when `body` is JSON: see the module's documentation.
pub(crate) fn next_token(body: &[u8]) -> Scan<'_> {
    if let Some(token) = from_the_end(body) {
        return Scan::Token(token.filter(|t| !t.is_empty()));
    }
    from_the_start(body).map_or(Scan::Unknown, |t| Scan::Token(t.filter(|t| !t.is_empty())))
}

/// The token of the members after the last array or object, read backwards: `None` when
/// that read cannot tell, `Some(None)` when it read every member of the object and none
/// was `NextToken`.
fn from_the_end(body: &[u8]) -> Option<Option<&str>> {
    let mut end = skip_ws_back(body, body.len());
    if end == 0 || body[end - 1] != b'}' {
        return None;
    }
    end = skip_ws_back(body, end - 1);
    let opens_at = |at: usize| (skip_ws_back(body, at) == 0).then_some(None);
    if body.get(end.checked_sub(1)?) == Some(&b'{') {
        return opens_at(end - 1);
    }
    loop {
        // The value ending at `end`.
        let last = *body.get(end.checked_sub(1)?)?;
        let (start, string) = match last {
            b'"' => (string_start(body, end - 1)?, true),
            b'0'..=b'9' | b'a'..=b'z' | b'E' | b'.' => {
                let len = body[..end]
                    .iter()
                    .rev()
                    .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
                    .count();
                (end - len, false)
            }
            _ => return None,
        };
        let mut at = skip_ws_back(body, start);
        if body.get(at.checked_sub(1)?) != Some(&b':') {
            return None;
        }
        at = skip_ws_back(body, at - 1);
        if body.get(at.checked_sub(1)?) != Some(&b'"') {
            return None;
        }
        let key_start = string_start(body, at - 1)?;
        let key = &body[key_start + 1..at - 1];
        if key.contains(&b'\\') {
            return None;
        }
        if key == b"NextToken" {
            return if string {
                Some(Some(plain_string(&body[start + 1..end - 1])?))
            } else if &body[start..end] == b"null" {
                Some(None)
            } else {
                None
            };
        }
        at = skip_ws_back(body, key_start);
        match *body.get(at.checked_sub(1)?)? {
            b',' => end = skip_ws_back(body, at - 1),
            b'{' => return opens_at(at - 1),
            _ => return None,
        }
    }
}

/// The index of the quote opening the string whose closing quote is at `close`: the
/// nearest quote before it that is not escaped, that is, not preceded by an odd number of
/// backslashes.
fn string_start(body: &[u8], close: usize) -> Option<usize> {
    let mut at = close;
    loop {
        at = body[..at].iter().rposition(|b| *b == b'"')?;
        let backslashes = body[..at].iter().rev().take_while(|b| **b == b'\\').count();
        if backslashes % 2 == 0 {
            return Some(at);
        }
    }
}

/// The index after the whitespace that ends at `at` (whitespace read backwards).
fn skip_ws_back(body: &[u8], mut at: usize) -> usize {
    while at > 0 && matches!(body[at - 1], b' ' | b'\t' | b'\n' | b'\r') {
        at -= 1;
    }
    at
}

/// The text of a string without escapes or control characters; `None` for any other,
/// which serde_json reads.
fn plain_string(raw: &[u8]) -> Option<&str> {
    if raw.iter().any(|b| *b < 0x20 || *b == b'\\') {
        return None;
    }
    std::str::from_utf8(raw).ok()
}

/// The token read from the start, up to the first `NextToken` member; `Some(None)` when
/// the object has none, `None` when the read cannot tell.
fn from_the_start(body: &[u8]) -> Option<Option<&str>> {
    let mut at = skip_ws(body, 0);
    if *body.get(at)? != b'{' {
        return None;
    }
    at = skip_ws(body, at + 1);
    if *body.get(at)? != b'}' {
        loop {
            if *body.get(at)? != b'"' {
                return None;
            }
            let (end, escaped) = string_end(body, at)?;
            if escaped {
                return None;
            }
            let key = &body[at + 1..end];
            at = skip_ws(body, end + 1);
            if *body.get(at)? != b':' {
                return None;
            }
            at = skip_ws(body, at + 1);
            if key == b"NextToken" {
                return Some(token_value(body, at)?.0);
            }
            at = skip_value(body, at)?;
            at = skip_ws(body, at);
            match *body.get(at)? {
                b',' => at = skip_ws(body, at + 1),
                b'}' => break,
                _ => return None,
            }
        }
    }
    if skip_ws(body, at + 1) != body.len() {
        return None;
    }
    Some(None)
}

/// The `NextToken` value at `at` (`None` for `null`) and the index after it. Only a
/// string without escapes or control characters is read; serde_json reads the rest.
fn token_value(body: &[u8], at: usize) -> Option<(Option<&str>, usize)> {
    match *body.get(at)? {
        b'"' => {
            let (end, _) = string_end(body, at)?;
            Some((Some(plain_string(&body[at + 1..end])?), end + 1))
        }
        b'n' if body.get(at..at + 4)? == b"null" => Some((None, at + 4)),
        _ => None,
    }
}

/// The index after the value starting at `at`.
fn skip_value(body: &[u8], at: usize) -> Option<usize> {
    match *body.get(at)? {
        b'"' => Some(string_end(body, at)?.0 + 1),
        b'{' | b'[' => skip_nested(body, at),
        b't' if body.get(at..at + 4)? == b"true" => Some(at + 4),
        b'f' if body.get(at..at + 5)? == b"false" => Some(at + 5),
        b'n' if body.get(at..at + 4)? == b"null" => Some(at + 4),
        b'-' | b'0'..=b'9' => {
            let len = body[at..]
                .iter()
                .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .count();
            Some(at + len)
        }
        _ => None,
    }
}

/// The index after the array or object opening at `at`: brackets are matched by kind,
/// strings stepped over whole.
///
/// A block of bytes at a time: each byte is classified (quote, backslash, bracket) in a
/// loop the compiler turns into vector instructions, and the quotes of eight bytes are
/// counted at once with integer arithmetic, which says which brackets are inside strings.
/// Only brackets outside strings, and blocks with a backslash, are looked at byte by
/// byte. A loop over every byte paid a mispredicted branch at the end of every string, and
/// was no faster than serde_json's own skipping.
fn skip_nested(body: &[u8], at: usize) -> Option<usize> {
    let mut state = Nesting::default();
    let mut blocks = body.get(at..)?.chunks_exact(BLOCK);
    let mut offset = at;
    for block in &mut blocks {
        let mut bytes = [0; BLOCK];
        bytes.copy_from_slice(block);
        match state.block(&bytes) {
            Step::ReadOn => offset += BLOCK,
            Step::Closed(end) => return Some(offset + end),
            Step::Broken => return None,
        }
    }
    // The last, short block is padded with spaces, which change nothing.
    let rest = blocks.remainder();
    let mut bytes = [b' '; BLOCK];
    bytes[..rest.len()].copy_from_slice(rest);
    match state.block(&bytes) {
        Step::Closed(end) => Some(offset + end),
        Step::ReadOn | Step::Broken => None,
    }
}

/// Bytes [`skip_nested`] classifies at a time: eight words.
const BLOCK: usize = 64;
/// One byte of value `1` in every lane of a word.
const LOW: u64 = 0x0101_0101_0101_0101;
/// Class bits of a byte (see [`class`]).
const QUOTE: u8 = 1;
const BACKSLASH: u8 = 2;
const BRACKET: u8 = 4;

/// The class bits of `b`; `{ } [ ]` are the bytes whose `b | 0x20` is `{` or `}`.
fn class(b: u8) -> u8 {
    let bracket = matches!(b | 0x20, b'{' | b'}');
    (u8::from(b == b'"') * QUOTE)
        | (u8::from(b == b'\\') * BACKSLASH)
        | (u8::from(bracket) * BRACKET)
}

/// What one block told [`skip_nested`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The value goes on after this block.
    ReadOn,
    /// The value ends right before this index of the block.
    Closed(usize),
    /// A mismatched bracket, or nesting deeper than [`MAX_DEPTH`]: left to serde_json.
    Broken,
}

/// Where [`skip_nested`] is, between two blocks.
#[derive(Debug, Default)]
struct Nesting {
    /// Bit `n` says whether the level `n` levels up from the innermost is an object.
    objects: u128,
    depth: u32,
    in_string: bool,
    /// The previous byte was a backslash inside a string.
    escape: bool,
}

impl Nesting {
    /// Reads the next block of the value.
    fn block(&mut self, block: &[u8; BLOCK]) -> Step {
        let mut classes = [0; BLOCK];
        for (class_of, b) in classes.iter_mut().zip(block) {
            *class_of = class(*b);
        }
        let mut words = [0; BLOCK / 8];
        for (word, lanes) in words.iter_mut().zip(classes.chunks_exact(8)) {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(lanes);
            *word = u64::from_le_bytes(bytes);
        }
        let any = words.iter().fold(0, |any, word| any | word);
        if self.escape || any & (LOW * u64::from(BACKSLASH)) != 0 {
            return self.bytewise(block);
        }
        // Per lane, the quotes in the words before this one (at most 8 a lane): their sum,
        // gathered in the top lane by a multiplication, says whether a word starts inside
        // a string.
        let mut quotes_before: u64 = 0;
        if any & (LOW * u64::from(BRACKET)) != 0 {
            for (w, word) in words.iter().enumerate() {
                let quotes = word & (LOW * u64::from(QUOTE));
                if word & (LOW * u64::from(BRACKET)) != 0 {
                    let starts_inside = (quotes_before.wrapping_mul(LOW) >> 56) & 1 == 1;
                    // `1` in each lane after an odd number of quotes in the word: a
                    // string's opening quote counts as inside, its closing one as outside.
                    let mut inside = quotes.wrapping_mul(LOW) & LOW;
                    if self.in_string != starts_inside {
                        inside ^= LOW;
                    }
                    let brackets = (word >> 2) & LOW & !inside;
                    for lane in 0..8 {
                        if (brackets >> (8 * lane)) & 1 == 1 {
                            let i = 8 * w + lane;
                            let step = self.bracket(block[i], i);
                            if step != Step::ReadOn {
                                return step;
                            }
                        }
                    }
                }
                quotes_before += quotes;
            }
        } else {
            quotes_before = words.iter().map(|word| word & LOW).sum();
        }
        self.in_string ^= (quotes_before.wrapping_mul(LOW) >> 56) & 1 == 1;
        Step::ReadOn
    }

    /// [`Nesting::block`] one byte at a time, minding escapes.
    fn bytewise(&mut self, block: &[u8; BLOCK]) -> Step {
        for (i, b) in block.iter().enumerate() {
            if self.escape {
                self.escape = false;
            } else if self.in_string {
                match b {
                    b'"' => self.in_string = false,
                    b'\\' => self.escape = true,
                    _ => {}
                }
            } else if *b == b'"' {
                self.in_string = true;
            } else {
                let step = self.bracket(*b, i);
                if step != Step::ReadOn {
                    return step;
                }
            }
        }
        Step::ReadOn
    }

    /// Follows the byte `b`, at `i` of the block and outside strings.
    fn bracket(&mut self, b: u8, i: usize) -> Step {
        match b {
            b'{' | b'[' if self.depth == MAX_DEPTH => Step::Broken,
            b'{' | b'[' => {
                self.objects = (self.objects << 1) | u128::from(b == b'{');
                self.depth += 1;
                Step::ReadOn
            }
            b'}' | b']' if self.depth == 0 || (self.objects & 1 == 1) != (b == b'}') => {
                Step::Broken
            }
            b'}' | b']' => {
                self.objects >>= 1;
                self.depth -= 1;
                if self.depth == 0 {
                    Step::Closed(i + 1)
                } else {
                    Step::ReadOn
                }
            }
            _ => Step::ReadOn,
        }
    }
}

/// The index of the quote closing the string that opens at `at`, and whether the string
/// has escapes.
fn string_end(body: &[u8], at: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    let mut i = at + 1;
    loop {
        match *body.get(i)? {
            b'"' => return Some((i, escaped)),
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
}

fn skip_ws(body: &[u8], mut at: usize) -> usize {
    while matches!(body.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::NextTokenOnly;

    fn token(body: &str) -> Scan<'_> {
        next_token(body.as_bytes())
    }

    /// What the serde pass this scan replaces reads: `Err` when it fails.
    fn serde_token(body: &[u8]) -> Result<Option<String>, ()> {
        serde_json::from_slice::<NextTokenOnly>(body)
            .map(|head| head.next_token.filter(|t| !t.is_empty()))
            .map_err(drop)
    }

    #[test]
    fn reads_the_top_level_token_wherever_it_is() {
        assert_eq!(token(r#"{"NextToken":"abc"}"#), Scan::Token(Some("abc")));
        assert_eq!(
            token(r#"{"NextToken":"t-1","Instances":{"Instance":[{"Cpu":2}]}}"#),
            Scan::Token(Some("t-1"))
        );
        assert_eq!(
            token(
                r#"{"RequestId":"R","Instances":{"Instance":[]},"TotalCount":3,"NextToken":"t/2 +*"}"#
            ),
            Scan::Token(Some("t/2 +*"))
        );
        assert_eq!(
            token(" \r\n\t{ \"A\" : [ 1 , { } ] ,\n\t\"NextToken\"\r\n:\t\"x\" \n} \n"),
            Scan::Token(Some("x"))
        );
        assert_eq!(
            token(r#"{"NextToken":"下一页"}"#),
            Scan::Token(Some("下一页"))
        );
    }

    #[test]
    fn absent_null_and_empty_tokens_are_none() {
        for body in [
            r#"{}"#,
            " { } ",
            r#"{"NextToken":null}"#,
            r#"{"NextToken":""}"#,
            r#"{"NextToken" : null , "Instances":{}}"#,
            r#"{"RequestId":"R","Instances":{"Instance":[]}}"#,
        ] {
            assert_eq!(token(body), Scan::Token(None), "{body}");
        }
    }

    #[test]
    fn nested_tokens_and_lookalike_keys_are_ignored() {
        assert_eq!(
            token(r#"{"Instances":{"NextToken":"inner","Instance":[{"NextToken":"deep"}]}}"#),
            Scan::Token(None)
        );
        assert_eq!(
            token(r#"{"Instances":{"Instance":[{"NextToken":"deep"}]},"NextToken":"outer"}"#),
            Scan::Token(Some("outer"))
        );
        assert_eq!(
            token(r#"{"NextTokens":"a","Next":"b","nexttoken":"c","X":"NextToken"}"#),
            Scan::Token(None)
        );
        assert_eq!(
            token(r#"{"X":["NextToken","NextToken"],"NextToken":"t"}"#),
            Scan::Token(Some("t"))
        );
    }

    #[test]
    fn strings_are_skipped_whole_whatever_they_hold() {
        for body in [
            r#"{"A":"}\"{[","NextToken":"t"}"#,
            r#"{"A":"\\","NextToken":"t"}"#,
            r#"{"A":"\\\"","NextToken":"t"}"#,
            r#"{"A":["]\\",{"}":"\"NextToken\":\"no\""}],"NextToken":"t"}"#,
            r#"{"A":"\u0022}","NextToken":"t"}"#,
            r#"{"A":{"B":[[[]],{}],"C":-1.5e+3,"D":true,"E":false,"F":null},"NextToken":"t"}"#,
        ] {
            assert_eq!(token(body), Scan::Token(Some("t")), "{body}");
        }
    }

    #[test]
    fn whatever_is_uncertain_is_unknown() {
        for body in [
            "",
            "   ",
            "[]",
            r#""NextToken""#,
            "<html>proxy</html>",
            "null",
            r#"{}{}"#,
            // An escaped key may spell NextToken; an escaped value is left to serde.
            r#"{"Next\u0054oken":"t"}"#,
            r#"{"NextToken":"a\/b"}"#,
            r#"{"A\n":1,"NextToken":"t","B":[]}"#,
            // Not a string or null.
            r#"{"NextToken":7}"#,
            r#"{"NextToken":true}"#,
            r#"{"NextToken":{"V":"t"}}"#,
            r#"{"NextToken":["t"]}"#,
            r#"{"NextToken":nul}"#,
            // Control characters and invalid UTF-8 in the token.
            "{\"NextToken\":\"a\tb\"}",
            // Broken before the token.
            r#"{"NextToken" "t"}"#,
            r#"{NextToken:"t"}"#,
            r#"{"A":"unterminated}"#,
        ] {
            assert_eq!(token(body), Scan::Unknown, "{body}");
        }
        assert_eq!(next_token(b"{\"NextToken\":\"\xff\"}"), Scan::Unknown);
    }

    #[test]
    fn members_after_the_last_nested_value_are_read_from_the_end() {
        // Escaped keys and strings before the token do not matter from the end.
        assert_eq!(
            token(
                r#"{"A\n":1,"Instances":{"Instance":[{"S":"\"}"}]},"NextToken":"t","N":-1.5E+3,"T":true,"F":false,"Z":null}"#
            ),
            Scan::Token(Some("t"))
        );
        // Strings ending in escaped quotes and backslashes.
        assert_eq!(
            token(r#"{"I":[],"NextToken":"t","A":"x\\","B":"\"NextToken\":\"no\"","C":"\\\""}"#),
            Scan::Token(Some("t"))
        );
        // Every member read backwards, none is the token.
        assert_eq!(token(r#" { "A" : "x" , "B":2 } "#), Scan::Token(None));
        // A nested value stops the read from the end; the read from the start goes on.
        assert_eq!(
            token(r#"{"NextToken":"first","I":[],"X":1}"#),
            Scan::Token(Some("first"))
        );
    }

    /// What the quick reads give for answers that are not JSON, or that have the key
    /// twice: such an answer never decodes with that token, so the caller's check against
    /// the decoded page (`decode_checked`) ends the listing there. No answer that is JSON
    /// with one `NextToken` is read differently from serde_json (the property test below).
    #[test]
    fn answers_that_are_not_json_or_repeat_the_key_may_be_read() {
        for (body, read) in [
            (r#"{"NextToken":"a","NextToken":"b"}"#, Some("b")),
            (r#"{"NextToken":null,"NextToken":"a"}"#, Some("a")),
            (
                r#"{"NextToken":"a","I":[],"NextToken":"b","J":[]}"#,
                Some("a"),
            ),
            (r#"{"NextToken":nullx}"#, None),
            (r#"{"NextToken":"t""#, Some("t")),
            (r#"{"NextToken":"t","#, Some("t")),
            (r#"{"NextToken":"t",}"#, Some("t")),
            (r#"{"NextToken":"t" "A":1}"#, Some("t")),
            (r#"{"A":[},"NextToken":"t"}"#, Some("t")),
            (r#"{"A":x,"NextToken":"t"}"#, Some("t")),
            (r#"{"NextToken":"t"} x"#, Some("t")),
            (r#"{"NextToken":"t"}}"#, Some("t")),
        ] {
            assert_eq!(token(body), Scan::Token(read), "{body}");
            assert!(serde_token(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn cuts_of_an_answer_are_unknown_or_not_json() {
        let body = r#" {"RequestId":"R","Instances":{"Instance":[{"A":"x\"y","B":[1,{"C":null}]}]},"NextToken":"t2","TotalCount":3} "#;
        assert_eq!(token(body), Scan::Token(Some("t2")));
        for cut in 0..body.len() - 1 {
            let part = &body[..cut];
            if serde_json::from_str::<serde_json::Value>(part).is_ok() {
                assert_eq!(token(part), Scan::Token(Some("t2")), "{part}");
            }
        }
    }

    #[test]
    fn deep_nesting_is_unknown() {
        let nested = |n: usize| {
            format!(
                r#"{{"A":{}{},"NextToken":"t","B":[]}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert_eq!(token(&nested(MAX_DEPTH as usize)), Scan::Token(Some("t")));
        assert_eq!(token(&nested(MAX_DEPTH as usize + 1)), Scan::Unknown);
        // serde_json skips any depth: the fallback reads it.
        assert_eq!(
            serde_token(nested(1000).as_bytes()),
            Ok(Some("t".to_owned()))
        );
    }

    /// A JSON value, written by [`write`] in one of many equivalent spellings.
    #[derive(Debug, Clone)]
    enum Json {
        Null,
        Bool(bool),
        Number(String),
        String(String),
        Array(Vec<Json>),
        Object(Vec<(String, Json)>),
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => Just("NextToken".to_owned()),
            1 => Just("Instances".to_owned()),
            1 => Just("NextTokenX".to_owned()),
            3 => "[A-Za-z]{0,10}",
            1 => "[A-Za-z \"\\\\{}\\[\\]:,\u{1}é中]{0,6}",
        ]
    }

    /// A `NextToken` value: mostly a string or `null`.
    fn token_json() -> impl Strategy<Value = Json> {
        prop_oneof![
            6 => "[A-Za-z0-9/+=_-]{0,16}".prop_map(Json::String),
            2 => Just(Json::Null),
            1 => "[a \"\\\\/\t\u{1}é中]{0,6}".prop_map(Json::String),
            1 => json(),
        ]
    }

    /// Top-level members: mostly one `NextToken` among others, sometimes a second.
    fn members() -> impl Strategy<Value = Vec<(String, Json)>> {
        (
            prop::collection::vec((key(), json()), 0..5),
            prop::option::weighted(0.85, token_json()),
            prop::option::weighted(0.1, token_json()),
            any::<[prop::sample::Index; 2]>(),
        )
            .prop_map(|(mut members, first, second, at)| {
                for (value, at) in [first, second].into_iter().zip(at) {
                    if let Some(value) = value {
                        let at = at.index(members.len() + 1);
                        members.insert(at, ("NextToken".to_owned(), value));
                    }
                }
                members
            })
    }

    fn json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            prop_oneof![
                Just("0".to_owned()),
                Just("-12.5e+3".to_owned()),
                Just("1E-7".to_owned()),
                any::<i64>().prop_map(|n| n.to_string()),
            ]
            .prop_map(Json::Number),
            prop_oneof![
                3 => "[A-Za-z0-9/+=_-]{0,12}",
                1 => Just("NextToken".to_owned()),
                2 => "[a \"\\\\{}\\[\\]:,\t\u{1}é中]{0,8}",
            ]
            .prop_map(Json::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                prop::collection::vec((key(), inner), 0..6).prop_map(Json::Object),
            ]
        })
    }

    /// Picks spellings: whitespace and escapes, cycling through `style`.
    struct Writer<'s> {
        style: &'s [u8],
        next: usize,
        out: String,
    }

    impl Writer<'_> {
        fn pick(&mut self) -> u8 {
            let b = self.style.get(self.next % self.style.len().max(1)).copied();
            self.next += 1;
            b.unwrap_or(0)
        }

        fn ws(&mut self) {
            let ws = [" ", "\n", "\t", "\r\n  "];
            if self.pick() % 3 == 0 {
                let i = usize::from(self.pick()) % ws.len();
                self.out.push_str(ws[i]);
            }
        }

        /// Writes `s`; answers whether it has escapes.
        fn string(&mut self, s: &str) -> bool {
            let mut escaped = false;
            // One string in eight spells some characters as `\uXXXX`.
            let spell = self.pick() % 8 == 0;
            self.out.push('"');
            for c in s.chars() {
                let code = u32::from(c);
                if c == '"' || c == '\\' {
                    self.out.push('\\');
                    self.out.push(c);
                } else if code < 0x20 || (spell && code < 0x1_0000 && self.pick() % 3 == 0) {
                    self.out.push_str(&format!("\\u{code:04X}"));
                } else {
                    self.out.push(c);
                    continue;
                }
                escaped = true;
            }
            self.out.push('"');
            escaped
        }

        fn value(&mut self, v: &Json) {
            match v {
                Json::Null => self.out.push_str("null"),
                Json::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
                Json::Number(n) => self.out.push_str(n),
                Json::String(s) => {
                    self.string(s);
                }
                Json::Array(items) => {
                    self.out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        self.ws();
                        if i > 0 {
                            self.out.push(',');
                            self.ws();
                        }
                        self.value(item);
                    }
                    self.ws();
                    self.out.push(']');
                }
                Json::Object(members) => {
                    self.members(members);
                }
            }
        }

        /// Writes an object; answers whether its members are all plain enough for the
        /// scan to read the `NextToken` among them.
        fn members(&mut self, members: &[(String, Json)]) -> bool {
            let mut plain = true;
            let mut tokens = 0;
            self.out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                self.ws();
                if i > 0 {
                    self.out.push(',');
                    self.ws();
                }
                plain &= !self.string(key);
                self.ws();
                self.out.push(':');
                self.ws();
                let start = self.out.len();
                self.value(value);
                if key == "NextToken" {
                    tokens += 1;
                    let written = &self.out[start..];
                    plain &= matches!(value, Json::Null)
                        || (matches!(value, Json::String(_)) && !written.contains('\\'));
                }
            }
            self.ws();
            self.out.push('}');
            plain && tokens <= 1
        }
    }

    /// The byte-at-a-time skip that [`skip_nested`] must agree with.
    fn skip_nested_bytewise(body: &[u8], at: usize) -> Option<usize> {
        let mut objects: u128 = 0;
        let mut depth = 0;
        let mut i = at;
        loop {
            match *body.get(i)? {
                b'"' => i = string_end(body, i)?.0,
                open @ (b'{' | b'[') => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    objects = (objects << 1) | u128::from(open == b'{');
                    depth += 1;
                }
                close @ (b'}' | b']') => {
                    if (objects & 1 == 1) != (close == b'}') {
                        return None;
                    }
                    objects >>= 1;
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    #[test]
    fn word_skipping_handles_escapes_and_lookalikes_across_words() {
        for (value, len) in [
            // Escaped quotes and backslashes on both sides of a word boundary.
            (r#"["abcde\"]", "\\", "x\\\\"] tail"#, 27),
            (r#"["abcdef\\", "]"]"#, 17),
            (r#"["abcdef\"", "]"]"#, 17),
            (r#"["abcdefg\"]"]"#, 14),
            // Bytes that look like brackets to the word arithmetic.
            (r#"{"Y_y":["y","_",{"Y":[]}],"a\u007f":"{["}"#, 41),
            (r#"[1,2,3,4,5,6,7,[8,[9,{"k":"]]]]]]]]]]]"}]]]"#, 43),
            (r#"[]"#, 2),
            (r#"{}  "#, 2),
            ("[\"Y\x7f\",\x7fY]", 9),
        ] {
            let body = value.as_bytes();
            assert_eq!(skip_nested_bytewise(body, 0), Some(len), "{value}");
            assert_eq!(skip_nested(body, 0), Some(len), "{value}");
        }
        for broken in [r#"[}"#, r#"["]"#, r#"[[[]]"#, r#"{"a":"\"}"#, r#"[\"]"#] {
            assert_eq!(skip_nested_bytewise(broken.as_bytes(), 0), None, "{broken}");
            assert_eq!(skip_nested(broken.as_bytes(), 0), None, "{broken}");
        }
    }

    proptest! {
        #[test]
        fn word_skipping_agrees_with_the_bytewise_skip(
            open in prop::sample::select(b"{[".to_vec()),
            soup in prop::collection::vec(
                prop::sample::select(b"{}[]\"\\\\ a:,Y_y\x7f".to_vec()),
                0..300,
            ),
            at in 0..9usize,
        ) {
            let mut body = vec![b' '; at];
            body.push(open);
            body.extend(soup);
            prop_assert_eq!(skip_nested(&body, at), skip_nested_bytewise(&body, at));
        }

        #[test]
        fn the_scan_agrees_with_serde_json(
            members in members(),
            style in prop::collection::vec(any::<u8>(), 1..64),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut w = Writer { style: &style, next: 0, out: String::new() };
            w.ws();
            let plain = w.members(&members);
            w.ws();
            let doc = w.out;
            let expected = serde_token(doc.as_bytes());
            prop_assert!(
                serde_json::from_str::<serde_json::Value>(&doc).is_ok(),
                "generated invalid JSON: {}", doc
            );
            let tokens = members.iter().filter(|(k, _)| k == "NextToken").count();
            match (next_token(doc.as_bytes()), expected) {
                (Scan::Token(t), Ok(expected)) => {
                    prop_assert_eq!(t.map(str::to_owned), expected, "{}", doc)
                }
                (Scan::Unknown, Ok(_)) => {
                    prop_assert!(!plain, "a plain answer read as unknown: {}", doc)
                }
                // Twice: decoding tells (`decode_checked`).
                (_, Err(())) if tokens > 1 => {}
                // Once, and not a string or null: serde_json fails, and so must the scan.
                (scan, Err(())) => prop_assert_eq!(scan, Scan::Unknown, "{}", doc),
            }
            // A cut answer that is still JSON is read as serde_json reads it.
            let cut = &doc.as_bytes()[..cut.index(doc.len() + 1)];
            if let (Scan::Token(t), Ok(expected)) = (next_token(cut), serde_token(cut)) {
                prop_assert_eq!(t.map(str::to_owned), expected, "{}", doc);
            }
        }
    }
}
