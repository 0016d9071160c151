//! What watches over the daemon and its links: the hardware watchdog this node pets, and
//! the alarm for packets that fail authentication.

use std::path::PathBuf;

use log::{error, info};

use crate::time::{Duration, Instant};

use super::Daemon;

/// The hardware watchdog this node pets while it may keep its groups (its own stonith line
/// is `watchdog`; docs/fencing.md).
pub(super) struct Dog {
    pub(super) dev: crate::sys::watchdog::Watchdog,
    pub(super) path: PathBuf,
    pub(super) next_pet: Instant,
    /// A quarter of the period.
    pub(super) every: Duration,
    /// A loop iteration that works longer than this (half the period) ends the petting.
    pub(super) stuck_limit: Duration,
    pub(super) healthy: bool,
    /// The last pet decision (logged when it changes).
    pub(super) petting: bool,
}

/// Packets failing authentication on one link: reported (error, once per episode) when
/// several arrive within a few seconds and none passes, the sign of two different keys.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct AuthAlarm {
    window_start: Option<Instant>,
    bad: u32,
    reported: bool,
}

impl AuthAlarm {
    pub(super) const WINDOW: Duration = Duration::from_secs(5);
    pub(super) const THRESHOLD: u32 = 3;

    /// `bad` packets failed authentication and `good` passed at `now`; true when the
    /// episode is to be reported now.
    pub(super) fn update(&mut self, now: Instant, bad: u64, good: u64) -> bool {
        if good > 0 {
            *self = AuthAlarm::default();
            return false;
        }
        if bad == 0 {
            return false;
        }
        match self.window_start {
            Some(t) if now.saturating_since(t) <= AuthAlarm::WINDOW => {}
            _ => {
                self.window_start = Some(now);
                self.bad = 0;
            }
        }
        self.bad = self.bad.saturating_add(u32::try_from(bad).unwrap_or(u32::MAX));
        if self.bad >= AuthAlarm::THRESHOLD && !self.reported {
            self.reported = true;
            return true;
        }
        false
    }
}

impl Daemon {
    /// Pets the watchdog when due, if the loop is healthy and the partition decisions let
    /// this node keep its groups. `work`: how long this iteration worked (not waited).
    pub(super) fn watchdog(&mut self, now: Instant, work: Duration) {
        let Some(d) = self.dog.as_mut() else { return };
        if d.healthy && work > d.stuck_limit {
            d.healthy = false;
            error!(
                "the loop worked {} ms without returning to poll (more than half the watchdog period): no longer \
                 petting watchdog {}; this node resets",
                work.as_millis(),
                d.path.display()
            );
        }
        if now < d.next_pet {
            return;
        }
        d.next_pet = now + d.every;
        let may = d.healthy && self.node.may_pet(now);
        if may != d.petting {
            d.petting = may;
            if may {
                info!("petting watchdog {} again", d.path.display());
            } else if d.healthy {
                error!(
                    "the peer is silent and this node may not keep its groups (no ping target answers): not petting \
                     watchdog {}; this node resets unless the peer is heard again",
                    d.path.display()
                );
            }
        }
        if may {
            if let Err(e) = d.dev.pet() {
                error!("watchdog {}: pet: {e}", d.path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_alarm_fires_once_per_episode() {
        let t = |ms: u64| Instant::from_millis(ms);
        let mut a = AuthAlarm::default();
        assert!(!a.update(t(0), 1, 0));
        assert!(!a.update(t(1000), 1, 0));
        assert!(a.update(t(2000), 1, 0), "three in the window");
        assert!(!a.update(t(2500), 5, 0), "reported once");
        assert!(!a.update(t(3000), 0, 1), "a good packet ends the episode");
        assert!(!a.update(t(10_000), 1, 0));
        assert!(!a.update(t(16_000), 1, 0), "spread over more than the window");
        assert!(!a.update(t(16_100), 1, 0));
        assert!(a.update(t(16_200), 1, 0));
    }
}
