//! Lazy page streams over token-paged and offset-paged vendor APIs.
//!
//! Each helper turns a `fetch` function (one vendor request per call) into a
//! `BoxStream<'static, Result<T>>` that requests a page only when the previous one has
//! been consumed (or, for [`offset_pages_concurrent`], a bounded number ahead), ends after
//! the last page, and ends right after yielding an error: an `Err` item means the
//! listing is incomplete.
//!
//! The offset helpers share one shift guard: offset paging over an inventory that changes
//! while it is listed skips or repeats items (a delete before the current offset moves
//! every later item one place up). When the total a page reports differs from the first
//! page's, or the items listed differ from that total, the last page is marked with
//! [`OffsetPage::mark_moved`]; a sync then confirms missing hosts by id before it
//! releases any, and never treats the listing as proof of absence.

use std::collections::HashSet;
use std::future::Future;

use cmdb_core::{DatabasePage, Error, HostPage, Result};
use futures::stream::{self, BoxStream, StreamExt};

/// Pages by continuation token (Alibaba `NextToken`, vSphere `token`).
///
/// `fetch(None)` asks for the first page, then `fetch(Some(token))` for each next one,
/// with the token the previous page returned. The stream ends when a page returns no
/// token or an empty one. A token the server already returned would loop forever: the
/// stream then yields that page, then a [`Decode`](cmdb_core::ErrorKind::Decode) error
/// saying the token repeated, and ends.
///
/// ```
/// use futures::TryStreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cmdb_core::Result<()> {
/// let pages = cmdb_http::token_pages(|token: Option<String>| async move {
///     Ok(match token.as_deref() {
///         None => (vec![1, 2], Some("t1".to_owned())),
///         Some("t1") => (vec![3], Some(String::new())),
///         Some(_) => unreachable!(),
///     })
/// });
/// assert_eq!(pages.try_collect::<Vec<_>>().await?, vec![vec![1, 2], vec![3]]);
/// # Ok(()) }
/// ```
pub fn token_pages<T, F, Fut>(fetch: F) -> BoxStream<'static, Result<T>>
where
    F: FnMut(Option<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(T, Option<String>)>> + Send + 'static,
    T: Send + 'static,
{
    enum State {
        Start,
        Next(String),
        Failed(Error),
        Done,
    }

    struct Pager<F> {
        fetch: F,
        seen: HashSet<String>,
        pages: u64,
    }

    stream::unfold(
        (
            State::Start,
            Pager {
                fetch,
                seen: HashSet::new(),
                pages: 0,
            },
        ),
        |(state, mut pager)| async move {
            let token = match state {
                State::Start => None,
                State::Next(token) => Some(token),
                State::Failed(error) => return Some((Err(error), (State::Done, pager))),
                State::Done => return None,
            };
            match (pager.fetch)(token).await {
                Err(error) => Some((Err(error), (State::Done, pager))),
                Ok((page, next)) => {
                    pager.pages += 1;
                    let state = match next.filter(|t| !t.is_empty()) {
                        None => State::Done,
                        Some(token) if pager.seen.insert(token.clone()) => State::Next(token),
                        Some(_) => State::Failed(Error::decode(format!(
                            "the server repeated a page token it had already returned, after {} pages; \
                             stopping to avoid an endless listing",
                            pager.pages
                        ))),
                    };
                    Some((Ok(page), (state, pager)))
                }
            }
        },
    )
    .boxed()
}

/// Pages by continuation token, decoding each page while the next one is fetched.
///
/// Like [`token_pages`], but a page comes in two steps: `fetch(token)` sends one request
/// and returns the raw answer with the token it carries (read from the answer without
/// decoding all of it), then `decode(raw)` turns the answer into the page. As soon as a
/// token arrives the next request is sent, on a task of its own, so the request for page
/// `n + 1` is on the wire while page `n` is decoded here and handed on: still one request
/// in flight at a time, never waiting for the consumer. At most one raw answer is held
/// beyond the page being decoded. `decode` runs on the stream's own task, once the
/// request for the next page has been sent: it is meant for the CPU work of one page
/// (about a millisecond for a page of 100 hosts), not for anything that waits.
///
/// The stream ends after a page without a token (or with an empty one), or right after
/// yielding an error from either step; a repeated token yields the page, then a
/// [`Decode`](cmdb_core::ErrorKind::Decode) error. Dropping the stream aborts the request
/// in flight. Needs a tokio runtime.
///
/// ```
/// use futures::TryStreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cmdb_core::Result<()> {
/// let pages = cmdb_http::token_pages_pipelined(
///     |token: Option<String>| async move {
///         Ok(match token.as_deref() {
///             None => ("1,2", Some("t1".to_owned())),
///             Some("t1") => ("3", None),
///             Some(_) => unreachable!(),
///         })
///     },
///     |raw: &'static str| Ok(raw.split(',').map(|n| n.parse::<u32>().unwrap()).collect::<Vec<_>>()),
/// );
/// assert_eq!(pages.try_collect::<Vec<_>>().await?, vec![vec![1, 2], vec![3]]);
/// # Ok(()) }
/// ```
pub fn token_pages_pipelined<R, T, F, Fut, D>(fetch: F, decode: D) -> BoxStream<'static, Result<T>>
where
    F: FnMut(Option<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(R, Option<String>)>> + Send + 'static,
    D: FnMut(R) -> Result<T> + Send + 'static,
    R: Send + 'static,
    T: Send + 'static,
{
    struct Pager<F, D, R> {
        fetch: F,
        decode: D,
        /// The request in flight; aborted when the stream is dropped.
        in_flight: Option<InFlight<R>>,
        /// An error to yield after the page in hand.
        failed: Option<Error>,
        seen: HashSet<String>,
        pages: u64,
    }

    impl<F, D, R, Fut> Pager<F, D, R>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<(R, Option<String>)>> + Send + 'static,
        R: Send + 'static,
    {
        fn send(&mut self, token: Option<String>) {
            // In the caller's span, so the request's `vendor_call` span is the run's child.
            let fetch = tracing::Instrument::in_current_span((self.fetch)(token));
            self.in_flight = Some(InFlight(tokio::spawn(fetch)));
        }
    }

    let pager = Pager {
        fetch,
        decode,
        in_flight: None,
        failed: None,
        seen: HashSet::new(),
        pages: 0,
    };
    stream::unfold(Some((pager, true)), |state| async move {
        let (mut pager, first) = state?;
        if let Some(error) = pager.failed.take() {
            return Some((Err(error), None));
        }
        if first {
            pager.send(None);
        }
        let mut in_flight = pager.in_flight.take()?;
        let answer = match (&mut in_flight.0).await {
            Ok(answer) => answer,
            // A panic in `fetch` is a bug: it goes on to the consumer as it would have
            // without the task.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::new(
                cmdb_core::ErrorKind::Unavailable,
                "the page request was cancelled: the runtime is shutting down",
            )),
        };
        let (raw, next) = match answer {
            Ok(answer) => answer,
            Err(error) => return Some((Err(error), None)),
        };
        pager.pages += 1;
        match next.filter(|t| !t.is_empty()) {
            None => {}
            Some(token) if pager.seen.insert(token.clone()) => pager.send(Some(token)),
            Some(_) => {
                pager.failed = Some(Error::decode(format!(
                    "the server repeated a page token it had already returned, after {} pages; \
                     stopping to avoid an endless listing",
                    pager.pages
                )))
            }
        }
        // The next request is on its way (spawned) while this page is decoded here.
        let mut pager = pager;
        let page = (pager.decode)(raw);
        match page {
            Ok(page) => Some((Ok(page), Some((pager, false)))),
            // The request in flight, if any, is aborted as `pager` drops.
            Err(error) => Some((Err(error), None)),
        }
    })
    .boxed()
}

/// A spawned page request, aborted when dropped.
struct InFlight<R>(tokio::task::JoinHandle<Result<(R, Option<String>)>>);

impl<R> Drop for InFlight<R> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What an offset-paged response says about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageInfo {
    /// Items in this page.
    pub items: usize,
    /// Items asked for per page (the `limit` / `PageSize` sent).
    pub page_size: usize,
    /// Items in the whole listing, when the vendor reports it.
    pub total: Option<u64>,
}

impl PageInfo {
    /// A page of `items` out of `page_size` asked for, with the listing's total if known.
    pub fn new(items: usize, page_size: usize, total: Option<u64>) -> PageInfo {
        PageInfo {
            items,
            page_size,
            total,
        }
    }

    /// Whether no page follows one that ends at `seen` items in all: this page is short
    /// (or empty), or the reported total is reached.
    fn is_last(&self, seen: u64) -> bool {
        self.items == 0
            || self.items < self.page_size
            || self.total.is_some_and(|total| seen >= total)
    }
}

/// Pages of a by-id lookup: `ids` in batches of `batch` (at least 1), `fetch(batch)`
/// called for one batch at a time, lazily, in order. No ids make no request. The stream
/// ends right after the first error, as the listing helpers do.
pub fn id_batches<T, F, Fut>(
    ids: Vec<String>,
    batch: usize,
    fetch: F,
) -> BoxStream<'static, Result<T>>
where
    F: FnMut(Vec<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let batches: Vec<Vec<String>> = ids.chunks(batch.max(1)).map(<[String]>::to_vec).collect();
    stream::unfold(Some((batches.into_iter(), fetch)), |state| async move {
        let (mut batches, mut fetch) = state?;
        let next = batches.next()?;
        match fetch(next).await {
            Ok(page) => Some((Ok(page), Some((batches, fetch)))),
            Err(error) => Some((Err(error), None)),
        }
    })
    .boxed()
}

/// A page of an offset-paged listing, which the shift guard can mark as the last page of
/// a listing that moved.
pub trait OffsetPage {
    /// Records that the listing moved while it was paged, saying how.
    fn mark_moved(&mut self, reason: String);
}

impl OffsetPage for HostPage {
    fn mark_moved(&mut self, reason: String) {
        self.moved = Some(reason);
    }
}

impl OffsetPage for DatabasePage {
    fn mark_moved(&mut self, reason: String) {
        self.moved = Some(reason);
    }
}

/// The shift guard of one offset-paged listing: the first page's total, a later total
/// that differs from it, and the items listed.
#[derive(Debug, Default)]
struct ShiftGuard {
    pages: u64,
    first_total: Option<u64>,
    other_total: Option<u64>,
    listed: u64,
}

impl ShiftGuard {
    fn observe(&mut self, info: &PageInfo) {
        self.pages += 1;
        self.listed += info.items as u64;
        if self.pages == 1 {
            self.first_total = info.total;
        } else if let (Some(first), Some(total)) = (self.first_total, info.total) {
            if total != first {
                self.other_total = Some(total);
            }
        }
    }

    /// Why the listing cannot have seen every item exactly once, if it cannot.
    fn moved(&self) -> Option<String> {
        let first = self.first_total?;
        if let Some(other) = self.other_total {
            return Some(format!(
                "the listing moved while it was paged: the vendor reported {first} items on \
                 the first page and {other} on a later one"
            ));
        }
        (self.listed != first).then(|| {
            format!(
                "the listing moved while it was paged: {} items were listed but the vendor \
                 reported {first}",
                self.listed
            )
        })
    }

    /// Marks `page`, the listing's last, when the listing moved.
    fn finish<T: OffsetPage>(&self, page: &mut T) {
        if let Some(reason) = self.moved() {
            tracing::info!(%reason, "offset-paged listing moved");
            page.mark_moved(reason);
        }
    }
}

/// Pages by page index (Huawei `offset`, a page number from 1; Alibaba `PageNumber`).
///
/// `fetch(i)` is called with `start`, `start + 1`, ...; it sends the index as the vendor
/// wants it (for an item offset, `i * page_size`) and returns the page and its
/// [`PageInfo`]. The stream ends after a short page (fewer items than `page_size`,
/// empty included) or once the items so far reach the reported total. The last page is
/// marked when the listing moved ([`HostPage::moved`](cmdb_core::HostPage::moved)).
pub fn offset_pages<T, F, Fut>(start: u64, fetch: F) -> BoxStream<'static, Result<T>>
where
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(T, PageInfo)>> + Send + 'static,
    T: OffsetPage + Send + 'static,
{
    sequential(start, ShiftGuard::default(), fetch)
}

/// Offset paging from page `index`, with what the guard saw of the pages before it.
fn sequential<T, F, Fut>(index: u64, guard: ShiftGuard, fetch: F) -> BoxStream<'static, Result<T>>
where
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(T, PageInfo)>> + Send + 'static,
    T: OffsetPage + Send + 'static,
{
    stream::unfold(Some((index, guard, fetch)), |state| async move {
        let (index, mut guard, mut fetch) = state?;
        match fetch(index).await {
            Err(error) => Some((Err(error), None)),
            Ok((mut page, info)) => {
                guard.observe(&info);
                let next = if info.is_last(guard.listed) {
                    guard.finish(&mut page);
                    None
                } else {
                    Some((index + 1, guard, fetch))
                };
                Some((Ok(page), next))
            }
        }
    })
    .boxed()
}

/// [`offset_pages`] with up to `concurrency` pages in flight.
///
/// The first page is fetched alone. If it reports a total, the remaining page indexes are
/// known and fetched `concurrency` at a time; pages are still yielded in index order.
/// Without a total it goes on one page at a time, like [`offset_pages`]. The stream ends
/// at the first error (pages in flight behind it are dropped) and after a short page.
///
/// The page count is fixed by the first page's total: hosts created during the listing
/// may be missed, as with any offset paging; the shift guard then marks the last page
/// ([`HostPage::moved`](cmdb_core::HostPage::moved)). A `concurrency` of 0 is taken as 1.
pub fn offset_pages_concurrent<T, F, Fut>(
    start: u64,
    concurrency: usize,
    fetch: F,
) -> BoxStream<'static, Result<T>>
where
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(T, PageInfo)>> + Send + 'static,
    T: OffsetPage + Send + 'static,
{
    let concurrency = concurrency.max(1);
    let first = async move {
        let mut fetch = fetch;
        let mut guard = ShiftGuard::default();
        let (mut page, info) = match fetch(start).await {
            Ok(first) => first,
            Err(error) => return stream::iter([Err(error)]).boxed(),
        };
        guard.observe(&info);
        if info.is_last(guard.listed) {
            guard.finish(&mut page);
            return stream::iter([Ok(page)]).boxed();
        }
        let head = stream::iter([Ok(page)]);
        let Some(total) = info.total.filter(|_| info.page_size > 0) else {
            return head.chain(sequential(start + 1, guard, fetch)).boxed();
        };
        let remaining = total
            .saturating_sub(guard.listed)
            .div_ceil(info.page_size as u64);
        let pages = stream::iter(start + 1..start + 1 + remaining)
            .map(fetch)
            .buffered(concurrency)
            .boxed();
        // Not `scan`/`take_while`: they poll the inner stream once more after the last
        // item, which would start yet another request.
        let rest = stream::unfold(Some((pages, guard)), move |state| async move {
            let (mut pages, mut guard) = state?;
            match pages.next().await? {
                Err(error) => Some((Err(error), None)),
                Ok((mut page, info)) => {
                    guard.observe(&info);
                    let short = info.items == 0 || info.items < info.page_size;
                    if short || guard.pages == remaining + 1 {
                        guard.finish(&mut page);
                        return Some((Ok(page), None));
                    }
                    Some((Ok(page), Some((pages, guard))))
                }
            }
        });
        head.chain(rest).boxed()
    };
    stream::once(first).flatten().boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use cmdb_core::ErrorKind;
    use futures::StreamExt;

    use std::future::ready;

    use super::*;

    fn boom() -> Error {
        Error::new(ErrorKind::Unavailable, "boom")
    }

    /// A token server: page i returns token `t{i+1}`, the last one `last_token`.
    fn tokens(
        pages: usize,
        last_token: Option<&'static str>,
        calls: Arc<Mutex<Vec<Option<String>>>>,
    ) -> BoxStream<'static, Result<usize>> {
        token_pages(move |token: Option<String>| {
            calls.lock().unwrap().push(token.clone());
            let i = token.map_or(0, |t| t[1..].parse::<usize>().unwrap());
            async move {
                let next = if i + 1 == pages {
                    last_token.map(str::to_owned)
                } else {
                    Some(format!("t{}", i + 1))
                };
                Ok((i, next))
            }
        })
    }

    #[tokio::test]
    async fn tokens_stop_on_an_empty_or_missing_token() {
        for last in [None, Some("")] {
            let calls = Arc::new(Mutex::new(Vec::new()));
            let pages: Vec<_> = tokens(3, last, calls.clone()).collect().await;
            let pages: Vec<usize> = pages.into_iter().map(|p| p.unwrap()).collect();
            assert_eq!(pages, vec![0, 1, 2]);
            assert_eq!(
                *calls.lock().unwrap(),
                vec![None, Some("t1".to_owned()), Some("t2".to_owned())]
            );
        }
    }

    #[tokio::test]
    async fn a_repeated_token_yields_the_page_then_an_error_and_ends() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let stream = token_pages(move |token: Option<String>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                // t1 -> t2 -> t1 again.
                let next = match token.as_deref() {
                    None => "t1",
                    Some("t1") => "t2",
                    _ => "t1",
                };
                Ok((token, Some(next.to_owned())))
            }
        });
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 4, "{items:?}");
        assert!(items[..3].iter().all(|i| i.is_ok()));
        let error = items[3].as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Decode);
        assert!(error.message().contains("repeated"), "{error}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "no request after the repeat"
        );
    }

    #[tokio::test]
    async fn a_token_error_ends_the_stream() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let stream = token_pages(move |token: Option<String>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                match token {
                    None => Ok((1, Some("t1".to_owned()))),
                    Some(_) => Err(boom()),
                }
            }
        });
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 2);
        assert_eq!(*items[0].as_ref().unwrap(), 1);
        assert_eq!(
            items[1].as_ref().unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn token_pages_are_lazy() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut stream = tokens(100, None, calls.clone());
        assert!(
            calls.lock().unwrap().is_empty(),
            "nothing before the first poll"
        );
        stream.next().await.unwrap().unwrap();
        stream.next().await.unwrap().unwrap();
        assert_eq!(
            calls.lock().unwrap().len(),
            2,
            "one request per page consumed"
        );
    }

    /// [`tokens`] pipelined: the raw answer is the page index, decoded to `index * 10`.
    fn pipelined(
        pages: usize,
        calls: Arc<Mutex<Vec<Option<String>>>>,
    ) -> BoxStream<'static, Result<usize>> {
        token_pages_pipelined(
            move |token: Option<String>| {
                calls.lock().unwrap().push(token.clone());
                let i = token.map_or(0, |t| t[1..].parse::<usize>().unwrap());
                async move { Ok((i, (i + 1 < pages).then(|| format!("t{}", i + 1)))) }
            },
            |i: usize| Ok(i * 10),
        )
    }

    #[tokio::test]
    async fn pipelined_pages_come_decoded_in_order_and_stop_without_a_token() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let pages: Vec<usize> = pipelined(3, calls.clone())
            .map(|p| p.unwrap())
            .collect()
            .await;
        assert_eq!(pages, vec![0, 10, 20]);
        assert_eq!(
            *calls.lock().unwrap(),
            vec![None, Some("t1".to_owned()), Some("t2".to_owned())]
        );
    }

    #[tokio::test]
    async fn pipelined_pages_run_one_request_ahead_at_most() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut stream = pipelined(100, calls.clone());
        assert!(
            calls.lock().unwrap().is_empty(),
            "nothing before the first poll"
        );
        assert_eq!(stream.next().await.unwrap().unwrap(), 0);
        assert_eq!(stream.next().await.unwrap().unwrap(), 10);
        // Pages 0 and 1 consumed, the request for page 2 sent: never more.
        assert_eq!(calls.lock().unwrap().len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_request_is_on_the_wire_while_a_page_is_decoded() {
        let (started_tx, started_rx) = std::sync::mpsc::channel::<String>();
        let started_rx = Mutex::new(started_rx);
        let stream = token_pages_pipelined(
            move |token: Option<String>| {
                let started = started_tx.clone();
                async move {
                    if let Some(token) = &token {
                        started.send(token.clone()).unwrap();
                    }
                    Ok((token.is_none(), token.is_none().then(|| "t1".to_owned())))
                }
            },
            move |first: bool| {
                if first {
                    // Decoding page 0 cannot finish before the request for page 1 has
                    // started. The timeout only keeps a broken pager from hanging the test.
                    let token = started_rx
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_secs(30))
                        .map_err(|_| boom())?;
                    assert_eq!(token, "t1");
                }
                Ok(first)
            },
        );
        let pages: Vec<bool> = stream.map(|p| p.unwrap()).collect().await;
        assert_eq!(pages, vec![true, false]);
    }

    #[tokio::test]
    async fn pipelined_errors_end_the_stream_and_cancel_the_request_in_flight() {
        // A fetch error: yielded, then the end.
        let stream = token_pages_pipelined(
            |token: Option<String>| async move {
                match token {
                    None => Ok((1, Some("t1".to_owned()))),
                    Some(_) => Err(boom()),
                }
            },
            Ok,
        );
        let items: Vec<Result<i32>> = stream.collect().await;
        assert_eq!(items.len(), 2);
        assert_eq!(*items[0].as_ref().unwrap(), 1);
        assert_eq!(
            items[1].as_ref().unwrap_err().kind(),
            ErrorKind::Unavailable
        );

        // A decode error: yielded, then the end, and the request already sent for the
        // next page is dropped rather than left running.
        struct Dropped(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                let _ = self.0.take().map(|tx| tx.send(()));
            }
        }
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
        let dropped_tx = Mutex::new(Some(dropped_tx));
        let stream = token_pages_pipelined(
            move |token: Option<String>| {
                let guard = token
                    .is_some()
                    .then(|| Dropped(dropped_tx.lock().unwrap().take()));
                async move {
                    if guard.is_some() {
                        std::future::pending::<()>().await;
                    }
                    Ok((0, Some("t1".to_owned())))
                }
            },
            |_: i32| -> Result<i32> { Err(Error::decode("bad page")) },
        );
        let items: Vec<Result<i32>> = stream.collect().await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap_err().kind(), ErrorKind::Decode);
        dropped_rx.await.expect("the pending request was dropped");
    }

    #[tokio::test]
    async fn pipelined_repeated_token_yields_the_page_then_an_error() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let stream = token_pages_pipelined(
            move |token: Option<String>| {
                counter.fetch_add(1, Ordering::SeqCst);
                // Every answer says t1: the second one repeats it.
                async move { Ok((token.is_some(), Some("t1".to_owned()))) }
            },
            Ok,
        );
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(!*items[0].as_ref().unwrap());
        assert!(*items[1].as_ref().unwrap());
        assert_eq!(items[2].as_ref().unwrap_err().kind(), ErrorKind::Decode);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "no request after the repeat"
        );
    }

    /// An offset server over `total` items, `page_size` per page, pages numbered from 1.
    fn listing(
        total: u64,
        page_size: usize,
        report_total: bool,
    ) -> impl FnMut(u64) -> std::future::Ready<Result<(Vec<u64>, PageInfo)>> + Send + 'static {
        move |page: u64| {
            let from = (page - 1) * page_size as u64;
            let items: Vec<u64> = (from..total.min(from + page_size as u64)).collect();
            let info = PageInfo::new(items.len(), page_size, report_total.then_some(total));
            ready(Ok((items, info)))
        }
    }

    /// Test pages carry no mark; the guard's verdict is tested on [`HostPage`]s.
    impl OffsetPage for u64 {
        fn mark_moved(&mut self, _reason: String) {}
    }

    impl OffsetPage for Vec<u64> {
        fn mark_moved(&mut self, _reason: String) {}
    }

    /// An offset server over a shared inventory of `total` hosts, `page_size` a page,
    /// pages numbered from 1, that runs `change` on the inventory right after answering
    /// page `after`.
    fn moving(
        total: u64,
        page_size: usize,
        after: u64,
        change: fn(&mut Vec<u64>),
    ) -> impl FnMut(u64) -> std::future::Ready<Result<(HostPage, PageInfo)>> + Send + 'static {
        let inventory = Arc::new(Mutex::new((0..total).collect::<Vec<u64>>()));
        move |page: u64| {
            let mut inventory = inventory.lock().unwrap();
            let from = ((page - 1) * page_size as u64) as usize;
            let hosts: Vec<cmdb_core::Host> = inventory
                .iter()
                .skip(from)
                .take(page_size)
                .map(|i| cmdb_core::Host::new(cmdb_core::Vendor::Huawei, format!("i-{i}"), "r"))
                .collect();
            let count = inventory.len() as u64;
            let info = PageInfo::new(hosts.len(), page_size, Some(count));
            if page == after {
                change(&mut inventory);
            }
            ready(Ok((HostPage::new(hosts, Some(count)), info)))
        }
    }

    async fn marks(stream: BoxStream<'static, Result<HostPage>>) -> (usize, Vec<Option<String>>) {
        let pages: Vec<HostPage> = stream.map(|p| p.unwrap()).collect().await;
        let hosts = pages.iter().map(|p| p.hosts.len()).sum();
        (hosts, pages.into_iter().map(|p| p.moved).collect())
    }

    #[tokio::test]
    async fn id_batches_are_lazy_bounded_and_end_at_the_first_error() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let ids: Vec<String> = (0..250).map(|i| format!("i-{i}")).collect();
        let pages: Vec<Result<usize>> = id_batches(ids, 100, move |batch: Vec<String>| {
            seen.lock().unwrap().push(batch.len());
            let n = seen.lock().unwrap().len();
            ready(if n == 2 { Err(boom()) } else { Ok(batch.len()) })
        })
        .collect()
        .await;
        assert_eq!(pages.len(), 2);
        assert_eq!(*pages[0].as_ref().unwrap(), 100);
        assert!(pages[1].is_err());
        assert_eq!(
            *calls.lock().unwrap(),
            vec![100, 100],
            "no request after the error"
        );
        let none: Vec<Result<usize>> = id_batches(Vec::new(), 100, |_: Vec<String>| ready(Ok(1)))
            .collect()
            .await;
        assert!(none.is_empty(), "no ids, no request");
    }

    #[tokio::test]
    async fn a_quiet_listing_is_not_marked() {
        for stream in [
            offset_pages(1, moving(45, 10, 0, |_| {})),
            offset_pages_concurrent(1, 3, moving(45, 10, 0, |_| {})),
            offset_pages_concurrent(1, 3, moving(40, 10, 0, |_| {})),
        ] {
            let (_, marks) = marks(stream).await;
            assert!(marks.iter().all(Option::is_none), "{marks:?}");
        }
    }

    #[tokio::test]
    async fn deletes_during_the_listing_mark_its_last_page() {
        // Two hosts of page 1 deleted after it was answered: two hosts of page 2 slide
        // into page 1 and are never listed.
        let delete = |inv: &mut Vec<u64>| {
            inv.retain(|&i| i != 3 && i != 7);
        };
        for stream in [
            offset_pages(1, moving(45, 10, 1, delete)),
            offset_pages_concurrent(1, 1, moving(45, 10, 1, delete)),
        ] {
            let (hosts, marks) = marks(stream).await;
            // Hosts 10 and 11 slid into page 1 and were skipped; 3 and 7 were listed
            // before they went: the count alone (43, the last total) cannot tell.
            assert_eq!(hosts, 43);
            let (last, before) = marks.split_last().unwrap();
            assert!(before.iter().all(Option::is_none), "{marks:?}");
            let reason = last.as_deref().expect("the last page is marked");
            assert!(reason.contains("45") && reason.contains("43"), "{reason}");
        }
    }

    #[tokio::test]
    async fn creations_at_the_front_during_the_listing_mark_its_last_page() {
        // Newest first: two hosts created at the front push two hosts past the page
        // count fixed by the first total.
        let create = |inv: &mut Vec<u64>| {
            inv.insert(0, 1001);
            inv.insert(0, 1000);
        };
        for (stream, listed) in [
            // Pages on to the new total, listing two hosts twice.
            (offset_pages(1, moving(40, 10, 1, create)), 42),
            // Four pages, as the first total said: the last two hosts are never listed.
            (offset_pages_concurrent(1, 1, moving(40, 10, 1, create)), 40),
        ] {
            let (hosts, marks) = marks(stream).await;
            assert_eq!(hosts, listed);
            let reason = marks.last().unwrap().as_deref().expect("marked");
            assert!(reason.contains("40") && reason.contains("42"), "{reason}");
        }
    }

    async fn drain(stream: BoxStream<'static, Result<Vec<u64>>>) -> Vec<u64> {
        let pages: Vec<_> = stream.collect().await;
        pages.into_iter().flat_map(|p| p.unwrap()).collect()
    }

    #[tokio::test]
    async fn offset_stops_on_a_short_page() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let mut inner = listing(25, 10, false);
        let stream = offset_pages(1, move |i| {
            counter.fetch_add(1, Ordering::SeqCst);
            inner(i)
        });
        assert_eq!(drain(stream).await, (0..25).collect::<Vec<_>>());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn offset_stops_at_the_total_without_an_empty_request() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let mut inner = listing(30, 10, true);
        let stream = offset_pages(1, move |i| {
            counter.fetch_add(1, Ordering::SeqCst);
            inner(i)
        });
        assert_eq!(drain(stream).await, (0..30).collect::<Vec<_>>());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "the total makes a 4th, empty page needless"
        );
    }

    #[tokio::test]
    async fn offset_without_total_asks_one_empty_page_after_full_ones() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let mut inner = listing(20, 10, false);
        let stream = offset_pages(1, move |i| {
            counter.fetch_add(1, Ordering::SeqCst);
            inner(i)
        });
        assert_eq!(drain(stream).await.len(), 20);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn offset_errors_end_the_stream() {
        let stream = offset_pages(0, |i: u64| {
            ready(if i < 2 {
                Ok((i, PageInfo::new(10, 10, None)))
            } else {
                Err(boom())
            })
        });
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 3);
        assert_eq!(*items[1].as_ref().unwrap(), 1);
        assert!(items[2].is_err());
    }

    #[tokio::test]
    async fn offset_with_a_zero_page_size_stops_on_an_empty_page() {
        let stream = offset_pages(0, |i: u64| {
            ready(Ok((i, PageInfo::new(if i < 3 { 1 } else { 0 }, 0, None))))
        });
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 4);
    }

    /// A fetch that counts the requests in flight and takes `delay` of (paused) time.
    fn tracked(
        total: u64,
        page_size: usize,
        report_total: bool,
        fail_at: Option<u64>,
        in_flight: Arc<AtomicUsize>,
        max_in_flight: Arc<AtomicUsize>,
        calls: Arc<AtomicUsize>,
    ) -> impl FnMut(u64) -> BoxFuture<Vec<u64>> + Send + 'static {
        let mut inner = listing(total, page_size, report_total);
        move |page: u64| {
            calls.fetch_add(1, Ordering::SeqCst);
            let result = inner(page).into_inner();
            let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
            Box::pin(async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_in_flight.fetch_max(now, Ordering::SeqCst);
                // Later pages answer sooner, to show that order is kept anyway.
                tokio::time::sleep(Duration::from_millis(100 - page.min(90))).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                if fail_at == Some(page) {
                    return Err(boom());
                }
                result
            })
        }
    }

    type BoxFuture<T> = futures::future::BoxFuture<'static, Result<(T, PageInfo)>>;

    #[tokio::test(start_paused = true)]
    async fn concurrent_pages_come_in_order_with_bounded_in_flight() {
        let (in_flight, max, calls) = Default::default();
        let fetch = tracked(
            95,
            10,
            true,
            None,
            Arc::clone(&in_flight),
            Arc::clone(&max),
            Arc::clone(&calls),
        );
        let stream = offset_pages_concurrent(1, 3, fetch);
        assert_eq!(drain(stream).await, (0..95).collect::<Vec<_>>());
        assert_eq!(calls.load(Ordering::SeqCst), 10);
        assert_eq!(
            max.load(Ordering::SeqCst),
            3,
            "up to 3 in flight, and it did overlap"
        );
        assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_pages_end_at_the_first_error() {
        let (in_flight, max, calls): (Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicUsize>) =
            Default::default();
        let fetch = tracked(
            100,
            10,
            true,
            Some(4),
            in_flight,
            max.clone(),
            calls.clone(),
        );
        let items: Vec<_> = offset_pages_concurrent(1, 2, fetch).collect().await;
        assert_eq!(items.len(), 4, "pages 1-3, then the error of page 4");
        assert!(items[..3].iter().all(|i| i.is_ok()));
        assert_eq!(
            items[3].as_ref().unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            5,
            "no page requested once the error is yielded"
        );
        assert!(max.load(Ordering::SeqCst) <= 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_falls_back_to_sequential_without_a_total() {
        let (in_flight, max, calls): (Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicUsize>) =
            Default::default();
        let fetch = tracked(35, 10, false, None, in_flight, max.clone(), calls.clone());
        let stream = offset_pages_concurrent(1, 4, fetch);
        assert_eq!(drain(stream).await, (0..35).collect::<Vec<_>>());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(max.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_single_page_and_first_error() {
        let one = offset_pages_concurrent(1, 4, listing(5, 10, true));
        assert_eq!(drain(one).await, (0..5).collect::<Vec<_>>());
        let empty = offset_pages_concurrent(1, 4, listing(0, 10, true));
        assert_eq!(drain(empty).await, Vec::<u64>::new());
        let failed: Vec<Result<u64>> = offset_pages_concurrent(1, 4, |_| ready(Err(boom())))
            .collect()
            .await;
        assert_eq!(failed.len(), 1);
        assert!(failed[0].is_err());
    }

    #[tokio::test]
    async fn concurrent_stops_after_a_short_page_in_the_middle() {
        // The total says 5 pages, but the listing shrank: page 3 is short.
        let stream = offset_pages_concurrent(1, 2, |i: u64| {
            let items = if i == 3 { 4 } else { 10 };
            ready(Ok((i, PageInfo::new(items, 10, Some(50)))))
        });
        let pages: Vec<u64> = stream.map(|p| p.unwrap()).collect().await;
        assert_eq!(pages, vec![1, 2, 3]);
    }
}
