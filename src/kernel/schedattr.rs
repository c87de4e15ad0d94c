//! A task's scheduling values as Linux keeps them per thread: the nice
//! value, the policy (SCHED_OTHER/FIFO/RR/BATCH/IDLE) with its real-time
//! priority, and SCHED_RESET_ON_FORK; and the rules for changing them
//! (clamping, RLIMIT_NICE and RLIMIT_RTPRIO for the unprivileged). The
//! fair scheduler weighs tasks by the nice value and SCHED_IDLE
//! (`fair.rs`), the real-time classes run FIFO and RR by priority
//! (`rt.rs`); getpriority, sched_get* and /proc/<pid>/stat report them.
//! "Privileged" is euid 0 (CAP_SYS_NICE: root has every capability here).

use crate::errno::{Errno, KResult};

pub const SCHED_OTHER: u32 = 0;
pub const SCHED_FIFO: u32 = 1;
pub const SCHED_RR: u32 = 2;
pub const SCHED_BATCH: u32 = 3;
pub const SCHED_IDLE: u32 = 5;
pub const SCHED_DEADLINE: u32 = 6;
pub const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;

pub const MIN_NICE: i32 = -20;
pub const MAX_NICE: i32 = 19;
/// Highest real-time priority (FIFO and RR use 1..=99).
pub const MAX_RT_PRIO: u32 = 99;
/// SCHED_RR's time slice (Linux's RR_TIMESLICE, 100 ms).
pub const RR_TIMESLICE_NS: u64 = 100_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub nice: i32,
    pub policy: u32,
    /// 1..=99 for FIFO and RR, 0 otherwise.
    pub rt_priority: u32,
    pub reset_on_fork: bool,
}

pub fn is_rt(policy: u32) -> bool {
    policy == SCHED_FIFO || policy == SCHED_RR
}

/// sched_get_priority_max/min: (min, max) of a policy.
pub fn priority_range(policy: u32) -> KResult<(u32, u32)> {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok((1, MAX_RT_PRIO)),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok((0, 0)),
        _ => Err(Errno::EINVAL),
    }
}

/// Who is asking: privileged (CAP_SYS_NICE, here euid 0) or bound by its
/// RLIMIT_NICE and RLIMIT_RTPRIO soft limits.
#[derive(Debug, Clone, Copy)]
pub struct Asker {
    pub privileged: bool,
    pub rlimit_nice: u64,
    pub rlimit_rtprio: u64,
}

impl Asker {
    /// Linux's can_nice: RLIMIT_NICE allows nice values down to 20 - rlim.
    fn can_nice(&self, nice: i32) -> bool {
        self.privileged || (20 - nice) as u64 <= self.rlimit_nice
    }
}

impl SchedAttr {
    /// What a child of fork starts with: the same, unless the parent asked
    /// for SCHED_RESET_ON_FORK (then normal policy and no negative nice).
    pub fn forked(&self) -> SchedAttr {
        if !self.reset_on_fork {
            return *self;
        }
        SchedAttr {
            nice: self.nice.max(0),
            policy: if is_rt(self.policy) {
                SCHED_OTHER
            } else {
                self.policy
            },
            rt_priority: 0,
            reset_on_fork: false,
        }
    }

    /// setpriority on this task (ownership already checked): clamps, and
    /// lowering the nice value needs the privilege or RLIMIT_NICE (EACCES).
    pub fn set_nice(&mut self, nice: i64, who: &Asker) -> KResult<()> {
        let nice = nice.clamp(MIN_NICE as i64, MAX_NICE as i64) as i32;
        if nice < self.nice && !who.can_nice(nice) {
            return Err(Errno::EACCES);
        }
        self.nice = nice;
        Ok(())
    }

    /// sched_setscheduler / sched_setparam (policy None keeps the current
    /// one); `policy` may carry SCHED_RESET_ON_FORK. Ownership already
    /// checked.
    pub fn set_policy(&mut self, policy: Option<u32>, prio: u32, who: &Asker) -> KResult<()> {
        let (policy, reset) = match policy {
            Some(p) => (p & !SCHED_RESET_ON_FORK, p & SCHED_RESET_ON_FORK != 0),
            None => (self.policy, self.reset_on_fork),
        };
        if !matches!(
            policy,
            SCHED_OTHER | SCHED_FIFO | SCHED_RR | SCHED_BATCH | SCHED_IDLE
        ) {
            return Err(Errno::EINVAL);
        }
        let valid = if is_rt(policy) {
            (1..=MAX_RT_PRIO).contains(&prio)
        } else {
            prio == 0
        };
        if !valid {
            return Err(Errno::EINVAL);
        }
        if !who.privileged {
            if is_rt(policy) {
                // A new real-time policy needs RLIMIT_RTPRIO, and a raised
                // priority may not pass it (Linux's rules).
                let limit = who.rlimit_rtprio;
                if policy != self.policy && limit == 0 {
                    return Err(Errno::EPERM);
                }
                if prio > self.rt_priority && prio as u64 > limit {
                    return Err(Errno::EPERM);
                }
            }
            // Leaving SCHED_IDLE needs the right to the current nice value.
            if self.policy == SCHED_IDLE && policy != SCHED_IDLE && !who.can_nice(self.nice) {
                return Err(Errno::EPERM);
            }
            // SCHED_RESET_ON_FORK cannot be dropped without privilege.
            if self.reset_on_fork && !reset {
                return Err(Errno::EPERM);
            }
        }
        self.policy = policy;
        self.rt_priority = prio;
        self.reset_on_fork = reset;
        Ok(())
    }

    /// sched_getscheduler's answer.
    pub fn policy_word(&self) -> u32 {
        self.policy
            | if self.reset_on_fork {
                SCHED_RESET_ON_FORK
            } else {
                0
            }
    }

    /// sched_rr_get_interval: RR's slice; 0 for FIFO (it runs until it
    /// yields) and for the rest (no fixed slice).
    pub fn rr_interval_ns(&self) -> u64 {
        if self.policy == SCHED_RR {
            RR_TIMESLICE_NS
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: Asker = Asker {
        privileged: true,
        rlimit_nice: 0,
        rlimit_rtprio: 0,
    };
    const USER: Asker = Asker {
        privileged: false,
        rlimit_nice: 0,
        rlimit_rtprio: 0,
    };

    #[test]
    fn nice_clamps_and_needs_privilege_to_lower() {
        let mut a = SchedAttr::default();
        a.set_nice(100, &USER).unwrap();
        assert_eq!(a.nice, 19);
        assert_eq!(a.set_nice(5, &USER), Err(Errno::EACCES));
        a.set_nice(-100, &ROOT).unwrap();
        assert_eq!(a.nice, -20);
        let mut b = SchedAttr::default();
        let limited = Asker {
            rlimit_nice: 25,
            ..USER
        };
        b.set_nice(-5, &limited).unwrap();
        assert_eq!(b.set_nice(-6, &limited), Err(Errno::EACCES));
    }

    #[test]
    fn policies_and_their_priorities() {
        let mut a = SchedAttr::default();
        assert_eq!(a.set_policy(Some(SCHED_FIFO), 0, &ROOT), Err(Errno::EINVAL));
        assert_eq!(a.set_policy(Some(SCHED_RR), 100, &ROOT), Err(Errno::EINVAL));
        assert_eq!(
            a.set_policy(Some(SCHED_OTHER), 1, &ROOT),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            a.set_policy(Some(SCHED_DEADLINE), 0, &ROOT),
            Err(Errno::EINVAL)
        );
        assert_eq!(a.set_policy(Some(SCHED_FIFO), 1, &USER), Err(Errno::EPERM));
        a.set_policy(Some(SCHED_BATCH), 0, &USER).unwrap();
        a.set_policy(Some(SCHED_RR | SCHED_RESET_ON_FORK), 7, &ROOT)
            .unwrap();
        assert_eq!(a.policy_word(), SCHED_RR | SCHED_RESET_ON_FORK);
        assert_eq!(a.rr_interval_ns(), RR_TIMESLICE_NS);
        a.set_policy(None, 9, &ROOT).unwrap();
        assert_eq!((a.policy, a.rt_priority), (SCHED_RR, 9));
        let c = a.forked();
        assert_eq!(
            (c.policy, c.rt_priority, c.reset_on_fork),
            (SCHED_OTHER, 0, false)
        );
        assert_eq!(a.set_policy(Some(SCHED_OTHER), 0, &USER), Err(Errno::EPERM));
        assert_eq!(priority_range(SCHED_FIFO), Ok((1, 99)));
        assert_eq!(priority_range(4), Err(Errno::EINVAL));
    }
}
