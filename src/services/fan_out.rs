//! The one bounded fan-out: tasks from an iterator run on a `JoinSet`, at
//! most `limit` at once, each reported with its position as it finishes.
//! Dropping the [`FanOut`] aborts what still runs (a client went away, a
//! chunk failed and the rest is moot). The iterator is only advanced when a
//! slot frees, so a lazy one can decide late whether to start more (repair
//! stops when its deadline nears).

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{Id, JoinSet};

/// A task that panicked (or was aborted): a bug, reported as an internal
/// error rather than as whatever the task was calling.
#[derive(Debug, Clone, thiserror::Error)]
#[error("a background task failed: {0}")]
pub struct TaskFailed(String);

/// Tasks of `I`, `limit` at a time.
#[derive(Debug)]
pub struct FanOut<I, T> {
    pending: I,
    running: JoinSet<T>,
    positions: HashMap<Id, usize>,
    started: usize,
    limit: usize,
}

impl<I, F, T> FanOut<I, T>
where
    I: Iterator<Item = F>,
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    /// Runs `tasks`, at most `limit` (at least 1) at once, from the first call to [`Self::next`].
    pub fn new(tasks: I, limit: usize) -> Self {
        Self {
            pending: tasks,
            running: JoinSet::new(),
            positions: HashMap::new(),
            started: 0,
            limit: limit.max(1),
        }
    }

    /// The next task to finish and its position among the tasks; `None`
    /// once every task the iterator gave has finished. Cancel-safe.
    pub async fn next(&mut self) -> Option<(usize, Result<T, TaskFailed>)> {
        while self.running.len() < self.limit {
            let Some(task) = self.pending.next() else {
                break;
            };
            #[expect(clippy::disallowed_methods, reason = "this is the bounded JoinSet")]
            let handle = self.running.spawn(task);
            self.positions.insert(handle.id(), self.started);
            self.started += 1;
        }
        let (id, outcome) = match self.running.join_next_with_id().await? {
            Ok((id, value)) => (id, Ok(value)),
            Err(e) => (e.id(), Err(TaskFailed(e.to_string()))),
        };
        let position = self.positions.remove(&id).unwrap_or(usize::MAX);
        Some((position, outcome))
    }

    /// How many tasks the iterator gave so far.
    pub fn started(&self) -> usize {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn runs_at_most_limit_at_once_and_reports_positions() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks = (0..10).map(|i| {
            let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i * 10
            }
        });
        let mut fan = FanOut::new(tasks, 3);
        let mut seen = Vec::new();
        while let Some((position, value)) = fan.next().await {
            assert_eq!(value.unwrap(), position * 10);
            seen.push(position);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_panic_is_a_task_failure_at_its_position() {
        let tasks = (0..2).map(|i| async move {
            assert!(i != 1, "task {i} fails");
            i
        });
        let mut fan = FanOut::new(tasks, 2);
        let mut failed = None;
        while let Some((position, value)) = fan.next().await {
            if value.is_err() {
                failed = Some(position);
            }
        }
        assert_eq!(failed, Some(1));
    }
}
