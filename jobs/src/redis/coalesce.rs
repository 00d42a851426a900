//! `Coalescer`: writes of one kind that arrive while one is being sent wait and go
//! together in the next request.
//!
//! A Lua script call costs Redis about as much again as the commands inside it, and
//! every request costs its client a reply to parse; under load, jobs are recorded many
//! at a time, so one call for all of them spends that once. Nothing waits on purpose:
//! a write that finds nothing in flight is sent at once, so a job at low load is not
//! delayed. The sending runs in a task of its own, so a caller that gives up (its
//! future dropped) strands no one else's write.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tracing::instrument::WithSubscriber;
use tracing::Instrument;

use crate::store::StoreError;

/// At most this many writes go in one request: a script blocks Redis while it runs.
pub(super) const MAX_BATCH: usize = 128;

type Waiting<T, O> = Vec<(T, oneshot::Sender<Result<O, StoreError>>)>;

/// Gathers writes of `T`, each answered with an `O`.
pub(super) struct Coalescer<T, O = ()> {
    state: Mutex<State<T, O>>,
}

struct State<T, O> {
    waiting: Waiting<T, O>,
    sending: bool,
}

impl<T, O> Default for Coalescer<T, O> {
    fn default() -> Self {
        Coalescer {
            state: Mutex::new(State {
                waiting: Vec::new(),
                sending: false,
            }),
        }
    }
}

impl<T: Send + 'static, O: Send + 'static> Coalescer<T, O> {
    /// Writes `item` with the next batch; `send` writes one batch and answers for each of
    /// its items in order (every caller passes an equivalent one, and the one whose write
    /// starts a round of sending is used).
    pub(super) async fn write<F, Fut>(self: &Arc<Self>, item: T, send: F) -> Result<O, StoreError>
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, StoreError>> + Send,
    {
        let (done, outcome) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.waiting.push((item, done));
            !std::mem::replace(&mut state.sending, true)
        };
        if start {
            // Its logs go where the caller's would, in the caller's span.
            let this = Arc::clone(self);
            let sending = async move { this.send_until_none_wait(send).await };
            tokio::spawn(sending.in_current_span().with_current_subscriber());
        }
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::unavailable(
                "the write was abandoned before its outcome was known",
            ))
        })
    }

    async fn send_until_none_wait<F, Fut>(&self, send: F)
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Result<Vec<O>, StoreError>>,
    {
        let mut round = Round {
            coalescer: self,
            over: false,
        };
        loop {
            let batch = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if state.waiting.is_empty() {
                    state.sending = false;
                    round.over = true;
                    return;
                }
                let take = state.waiting.len().min(MAX_BATCH);
                state.waiting.drain(..take).collect::<Waiting<T, O>>()
            };
            let (items, waiters): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            match send(items).await {
                Ok(answers) if answers.len() == waiters.len() => {
                    for (waiter, answer) in waiters.into_iter().zip(answers) {
                        let _ = waiter.send(Ok(answer));
                    }
                }
                Ok(answers) => {
                    let err = StoreError::Corrupt {
                        what: "a batched write's answer".into(),
                        reason: format!("{} answers for {} writes", answers.len(), waiters.len()),
                    };
                    for waiter in waiters {
                        let _ = waiter.send(Err(err.clone()));
                    }
                }
                Err(err) => {
                    for waiter in waiters {
                        let _ = waiter.send(Err(err.clone()));
                    }
                }
            }
        }
    }
}

/// A round of sending. Should it end before its loop does (a `send` that panicked, a
/// runtime shutting down), its drop fails the writes still waiting, whose callers then
/// get an error, and lets the next write start a round: nothing waits forever.
struct Round<'a, T, O> {
    coalescer: &'a Coalescer<T, O>,
    over: bool,
}

impl<T, O> Drop for Round<'_, T, O> {
    fn drop(&mut self) {
        if self.over {
            return;
        }
        let mut state = self
            .coalescer
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        state.waiting.clear();
        state.sending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Writes that arrive while a batch is in flight go together in the next one.
    #[tokio::test]
    async fn writes_that_arrive_while_one_is_sent_go_together() {
        let coalescer = Arc::new(Coalescer::<u32>::default());
        let batches = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let send = {
            let (batches, calls) = (batches.clone(), calls.clone());
            move |items: Vec<u32>| {
                let (batches, calls) = (batches.clone(), calls.clone());
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let answers = vec![(); items.len()];
                    batches.lock().unwrap().push(items);
                    Ok(answers)
                }
            }
        };
        let first = tokio::spawn({
            let (c, s) = (coalescer.clone(), send.clone());
            async move { c.write(0, s).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let rest: Vec<_> = (1..=5)
            .map(|i| {
                let (c, s) = (coalescer.clone(), send.clone());
                tokio::spawn(async move { c.write(i, s).await })
            })
            .collect();
        first.await.unwrap().unwrap();
        for r in rest {
            r.await.unwrap().unwrap();
        }
        let mut batches = batches.lock().unwrap().clone();
        batches[1].sort();
        assert_eq!(batches, vec![vec![0], vec![1, 2, 3, 4, 5]]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_write_in_it_and_the_next_write_is_sent_anew() {
        let coalescer = Arc::new(Coalescer::<u32>::default());
        let failing = |_: Vec<u32>| async { Err(StoreError::unavailable("down")) };
        let err = coalescer.write(1, failing).await.unwrap_err();
        assert!(err.to_string().contains("down"), "{err}");
        coalescer
            .write(2, |_| async { Ok(vec![()]) })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_send_that_panics_fails_its_writes_and_the_next_write_still_goes() {
        let coalescer = Arc::new(Coalescer::<u32>::default());
        let panics = |_: Vec<u32>| async { panic!("the send broke") };
        let err = coalescer.write(1, panics).await.unwrap_err();
        assert!(err.to_string().contains("abandoned"), "{err}");
        let next = coalescer.write(2, |_| async { Ok(vec![()]) });
        tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("the next write is sent, not left waiting")
            .unwrap();
    }
}
