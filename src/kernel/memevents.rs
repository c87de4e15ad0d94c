//! Memory events for whoever manages the instance (the balancer): "near
//! budget", "reclaiming", "swapping", "oom-kill", sent as UML mconsole
//! user notifications (`mconsole=notify:<socket>`) so the balancer can
//! wait for them instead of polling, and counted for `stats`.
//!
//! Rate: "near budget" is edge-triggered (sent when the frames the host
//! backs reach `NEAR` of the guest's cap, armed again below `REARM`);
//! "reclaiming" and "swapping" at most once per `QUIET`; every OOM kill.
//! A guest can therefore cause at most a few datagrams a second.

use std::time::{Duration, Instant};

use super::core::Kernel;
use crate::mconsole::protocol::NotifyType;

/// Share of the cap (percent) that counts as near the budget.
const NEAR: u64 = 90;
const REARM: u64 = 80;
const QUIET: Duration = Duration::from_secs(1);

/// What was sent, and the counters `stats` shows.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemEvents {
    pub near_budget: u64,
    pub reclaiming: u64,
    pub swapping: u64,
    pub oom_kills: u64,
    near: bool,
    last_reclaim: Option<Instant>,
    last_swap: Option<Instant>,
}

/// The kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemEvent {
    Reclaiming,
    Swapping,
    OomKill,
}

impl Kernel {
    /// Sends `what` (rate-limited as above) with the figures behind it.
    pub fn mem_event(&mut self, what: MemEvent, detail: &str) {
        let now = Instant::now();
        let ev = &mut self.memevents;
        let (name, last) = match what {
            MemEvent::Reclaiming => {
                ev.reclaiming += 1;
                ("reclaiming", &mut ev.last_reclaim)
            }
            MemEvent::Swapping => {
                ev.swapping += 1;
                ("swapping", &mut ev.last_swap)
            }
            MemEvent::OomKill => {
                ev.oom_kills += 1;
                self.notify_mem("oom-kill", detail);
                return;
            }
        };
        if last.is_some_and(|t| now.duration_since(t) < QUIET) {
            return;
        }
        *last = Some(now);
        self.notify_mem(name, detail);
    }

    /// Checks the near-budget edge (called at each budget refresh).
    pub fn mem_event_near_budget(&mut self) {
        let Some(cap) = self.budget.guest_frames.filter(|&c| c > 0) else {
            return;
        };
        let pct = self.physmem.frames_backed().saturating_mul(100) / cap;
        if !self.memevents.near && pct >= NEAR {
            self.memevents.near = true;
            self.memevents.near_budget += 1;
            let detail = format!("backed {pct}% of the guest's share");
            self.notify_mem("near-budget", &detail);
        } else if self.memevents.near && pct < REARM {
            self.memevents.near = false;
        }
    }

    fn notify_mem(&mut self, name: &str, detail: &str) {
        let held = self
            .budget
            .held(self.physmem.frames_host_backed().saturating_mul(4096));
        let text = format!(
            "memory {name} {detail} held={held} budget={}",
            self.budget
                .bytes
                .map_or_else(|| "none".to_string(), |b| b.to_string())
        );
        log::info!("{text}");
        self.mconsole.notify(NotifyType::User, text.as_bytes());
    }

    pub fn memevents_json(&self) -> serde_json::Value {
        let e = &self.memevents;
        serde_json::json!({
            "near_budget": e.near_budget,
            "reclaiming": e.reclaiming,
            "swapping": e.swapping,
            "oom_kills": e.oom_kills,
        })
    }
}
