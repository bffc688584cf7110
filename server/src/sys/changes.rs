//! Telling watchers that something changed: a counter that the engine bumps at every applied
//! event, and the inventory at every change of the licenses or pools, which the status page's live
//! push (`GET /status/events`) waits on instead of asking again and again.
//!
//! A `tokio::sync::watch` holds only the latest value, so a watcher that wakes late sees one
//! change however many happened meanwhile: the engine never queues anything for a slow
//! watcher, and a bump costs the same with no watcher or a thousand.

use tokio::sync::watch;

#[derive(Debug)]
pub struct Changes(watch::Sender<u64>);

impl Default for Changes {
    fn default() -> Self {
        Self(watch::Sender::new(0))
    }
}

impl Changes {
    /// Says that a change happened (the engine calls it under its lock, after the change).
    pub fn bump(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// The count of changes so far, and a wake-up at each next one.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watcher_wakes_once_for_changes_made_while_it_slept() {
        let changes = Changes::default();
        let mut watcher = changes.watch();
        assert_eq!(*watcher.borrow_and_update(), 0);
        changes.bump();
        changes.bump();
        changes.bump();
        watcher.changed().await.unwrap();
        assert_eq!(*watcher.borrow_and_update(), 3);
        assert!(!watcher.has_changed().unwrap());
    }
}
