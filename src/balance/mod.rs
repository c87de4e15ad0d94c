//! The host memory balancer's decisions (issue 14), as pure functions of
//! what it sees: each guest's exact figures (its mconsole `stats`, from the
//! kernel side: nothing a guest could lie with) and the host's
//! MemAvailable. A policy answers with `config mem=±N` changes; the daemon
//! that reads the figures and sends the changes is not written yet.
//!
//! | policy | keeps |
//! |---|---|
//! | [`ConstantFree`] | each guest's free memory near 16 MiB + 10 % of its use |
//! | [`HostShouldNotSwap`] | host MemAvailable above a floor: idlest guests give first |
#![deny(unsafe_code)]

use crate::abi::PAGE;

const MIB: u64 = 1 << 20;

/// One guest as the balancer sees it (from its `stats`).
#[derive(Debug, Clone, PartialEq)]
pub struct GuestView {
    pub umid: String,
    /// Memory plugged now (`config mem`).
    pub plugged: u64,
    /// Free memory (frames no one holds).
    pub free: u64,
    /// Clean page cache: the guest gives it back first on an unplug.
    pub clean_cache: u64,
    /// How far it may grow (`maxmem=`).
    pub maxmem: u64,
    /// Its floor: never unplugged below this.
    pub min: u64,
    /// Seconds since it last did work (syscalls or faults moved).
    pub idle_secs: f64,
}

impl GuestView {
    /// Memory in use (not free).
    pub fn used(&self) -> u64 {
        self.plugged.saturating_sub(self.free)
    }
}

/// The host as the balancer sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostView {
    pub mem_available: u64,
}

/// One decision: plug (`delta > 0`) or unplug bytes, page-aligned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub umid: String,
    pub delta: i64,
}

/// A balancing policy: what to change, given what is seen now.
pub trait Policy {
    fn decide(&self, host: HostView, guests: &[GuestView]) -> Vec<Change>;
}

fn page_round(b: u64) -> u64 {
    b / PAGE * PAGE
}

/// Keeps each guest's free memory near `base + percent % of its use`, so
/// its size follows its real use and its page cache cannot grow into
/// memory it does not need. Changes smaller than `hysteresis` are not made.
#[derive(Debug, Clone)]
pub struct ConstantFree {
    pub base: u64,
    pub percent: u64,
    pub hysteresis: u64,
}

impl Default for ConstantFree {
    fn default() -> Self {
        ConstantFree {
            base: 16 * MIB,
            percent: 10,
            hysteresis: 4 * MIB,
        }
    }
}

impl ConstantFree {
    pub fn target_free(&self, g: &GuestView) -> u64 {
        self.base
            .saturating_add(g.used().saturating_mul(self.percent) / 100)
    }
}

impl Policy for ConstantFree {
    fn decide(&self, _host: HostView, guests: &[GuestView]) -> Vec<Change> {
        let mut out = Vec::new();
        for g in guests {
            let want = g.used().saturating_add(self.target_free(g));
            let want = want.clamp(g.min, g.maxmem.max(g.min));
            let delta = if want >= g.plugged {
                page_round(want - g.plugged) as i64
            } else {
                -(page_round(g.plugged - want) as i64)
            };
            if delta.unsigned_abs() >= self.hysteresis {
                out.push(Change {
                    umid: g.umid.clone(),
                    delta,
                });
            }
        }
        out
    }
}

/// Keeps host MemAvailable above `floor`: below it, unplugs from the
/// idlest guests first (longest idle, then most free + clean cache),
/// each down to no less than its `min` and keeping `reserve` free; above
/// `floor + slack`, gives memory back to guests short of free memory
/// (under `reserve`), up to their maxmem and the room above the floor.
#[derive(Debug, Clone)]
pub struct HostShouldNotSwap {
    pub floor: u64,
    pub slack: u64,
    pub reserve: u64,
}

impl Policy for HostShouldNotSwap {
    fn decide(&self, host: HostView, guests: &[GuestView]) -> Vec<Change> {
        let mut out = Vec::new();
        if host.mem_available < self.floor {
            let mut need = self.floor - host.mem_available;
            let mut order: Vec<&GuestView> = guests.iter().collect();
            order.sort_by(|a, b| {
                b.idle_secs
                    .total_cmp(&a.idle_secs)
                    .then((b.free + b.clean_cache).cmp(&(a.free + a.clean_cache)))
            });
            for g in order {
                if need == 0 {
                    break;
                }
                let spare = (g.free + g.clean_cache).saturating_sub(self.reserve);
                let above_min = g.plugged.saturating_sub(g.min);
                let take = page_round(need.min(spare).min(above_min));
                if take > 0 {
                    out.push(Change {
                        umid: g.umid.clone(),
                        delta: -(take as i64),
                    });
                    need -= take.min(need);
                }
            }
        } else if host.mem_available > self.floor.saturating_add(self.slack) {
            let mut room = host.mem_available - self.floor - self.slack;
            for g in guests.iter().filter(|g| g.free < self.reserve) {
                let give = page_round(
                    (self.reserve - g.free)
                        .min(g.maxmem.saturating_sub(g.plugged))
                        .min(room),
                );
                if give > 0 {
                    out.push(Change {
                        umid: g.umid.clone(),
                        delta: give as i64,
                    });
                    room -= give;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(umid: &str, plugged: u64, free: u64, clean: u64, idle: f64) -> GuestView {
        GuestView {
            umid: umid.into(),
            plugged: plugged * MIB,
            free: free * MIB,
            clean_cache: clean * MIB,
            maxmem: 512 * MIB,
            min: 32 * MIB,
            idle_secs: idle,
        }
    }

    #[test]
    fn constant_free_shrinks_an_idle_guest_and_grows_a_busy_one() {
        let p = ConstantFree::default();
        let host = HostView { mem_available: 0 };
        // 256 MiB, 200 free: used 56, target free 16 + 5.6 → ~77.6 MiB.
        let idle = g("idle", 256, 200, 0, 60.0);
        // 64 MiB, 2 free: used 62, target 16 + 6.2 → ~84.2 MiB.
        let busy = g("busy", 64, 2, 0, 0.0);
        let c = p.decide(host, &[idle.clone(), busy.clone()]);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[0].umid == "idle" && c[0].delta < 0);
        assert!(c[1].umid == "busy" && c[1].delta > 0);
        let after = (idle.plugged as i64 + c[0].delta) as u64;
        let target = idle.used() + p.target_free(&idle);
        assert!(after.abs_diff(target) < PAGE, "{after} vs {target}");
        assert!(c.iter().all(|c| c.delta.unsigned_abs() % PAGE == 0));
    }

    #[test]
    fn constant_free_respects_min_max_and_hysteresis() {
        let p = ConstantFree::default();
        let host = HostView { mem_available: 0 };
        // Already at its target (within 4 MiB): nothing.
        let near = g("near", 80, 22, 0, 0.0);
        assert!(p.decide(host, &[near]).is_empty());
        // Would shrink below min: stops at min.
        let tiny = g("tiny", 64, 60, 0, 9.0);
        let c = p.decide(host, std::slice::from_ref(&tiny));
        assert_eq!((tiny.plugged as i64 + c[0].delta) as u64, tiny.min);
        // Would grow past maxmem: stops there.
        let mut full = g("full", 500, 0, 0, 0.0);
        full.maxmem = 512 * MIB;
        let c = p.decide(host, &[full]);
        assert_eq!(c[0].delta, 12 * MIB as i64);
    }

    #[test]
    fn host_floor_takes_from_the_idlest_first_and_never_below_min() {
        let p = HostShouldNotSwap {
            floor: 512 * MIB,
            slack: 128 * MIB,
            reserve: 8 * MIB,
        };
        let host = HostView {
            mem_available: 412 * MIB,
        };
        let busy = g("busy", 128, 100, 0, 0.1);
        let idle = g("idle", 128, 60, 10, 300.0);
        let c = p.decide(host, &[busy, idle]);
        // 100 MiB needed: the idle guest gives its 62 spare first.
        assert_eq!(c[0].umid, "idle");
        assert_eq!(c[0].delta, -(62 * MIB as i64));
        assert_eq!(c[1].umid, "busy");
        assert_eq!(c[1].delta, -(38 * MIB as i64));
        // A guest at its min gives nothing.
        let low = g("low", 32, 30, 0, 999.0);
        assert!(p.decide(host, &[low]).is_empty());
    }

    #[test]
    fn host_with_room_gives_back_to_guests_short_of_memory() {
        let p = HostShouldNotSwap {
            floor: 512 * MIB,
            slack: 128 * MIB,
            reserve: 8 * MIB,
        };
        let host = HostView {
            mem_available: 1024 * MIB,
        };
        let short = g("short", 64, 1, 0, 0.0);
        let fine = g("fine", 64, 30, 0, 0.0);
        let c = p.decide(host, &[short, fine]);
        assert_eq!(
            c,
            vec![Change {
                umid: "short".into(),
                delta: 7 * MIB as i64
            }]
        );
        // Between floor and floor + slack: nothing moves.
        let host = HostView {
            mem_available: 600 * MIB,
        };
        assert!(p.decide(host, &[g("short", 64, 1, 0, 0.0)]).is_empty());
    }
}
