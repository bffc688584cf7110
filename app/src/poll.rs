//! Polling: how the pages keep fresh when the [`live`](crate::live) stream is not open (and how
//! they fetch what the stream does not carry). One loop for every view that polls: it waits, asks
//! again only while the tab is visible, never runs two requests of one view at once (each
//! finishes before the next wait starts), and stops when the view goes.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use leptos::prelude::*;

/// Time between two polls. Short enough to watch a job start, long enough that a wall of open
/// status pages does not load the server.
pub const REFRESH: Duration = Duration::from_secs(3);

/// Whether the tab is in the background: then there is no one to show fresh data to.
pub fn page_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

/// Runs `tick` every [`REFRESH`] while the tab is visible (after a first wait: the caller loads
/// the first time itself) until the calling component is cleaned up.
pub fn every_refresh<F>(tick: impl Fn() -> F + 'static)
where
    F: Future<Output = ()> + 'static,
{
    every_visible(REFRESH, tick);
}

/// Runs `tick` every `period` while the tab is visible, until the calling component is cleaned
/// up.
pub fn every_visible<F>(period: Duration, tick: impl Fn() -> F + 'static)
where
    F: Future<Output = ()> + 'static,
{
    every(period, move || {
        let work = (!page_hidden()).then(&tick);
        async move {
            if let Some(work) = work {
                work.await;
            }
        }
    });
}

/// Runs `tick` every `period`, hidden tab or not, until the calling component is cleaned up.
pub fn every<F>(period: Duration, tick: impl Fn() -> F + 'static)
where
    F: Future<Output = ()> + 'static,
{
    let alive = Arc::new(AtomicBool::new(true));
    on_cleanup({
        let alive = Arc::clone(&alive);
        move || alive.store(false, Ordering::Relaxed)
    });
    leptos::task::spawn_local(async move {
        loop {
            gloo_timers::future::sleep(period).await;
            if !alive.load(Ordering::Relaxed) {
                return;
            }
            tick().await;
        }
    });
}
