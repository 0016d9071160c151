//! The haresources hand-over, as heartbeat's resource manager runs it: who holds `local`
//! and `foreign` resources, the start-up exchange (`starting`/`resource`), the three-phase
//! standby protocol (`ask_resources` me → other → done), take-over after a death or a
//! shutdown (`shutdone`, mach_down), auto failback, and clean shutdown.
//!
//! heartbeat names the sets from the speaker's side: a `resource rsc_hold=local` message
//! from the peer claims *its* groups, our `foreign`. `other_holds` keeps the peer's words.
//!
//! Where heartbeat forks a child (to run resource scripts), the engine queues an operation
//! and asks the daemon with [`Action::Acquire`]/[`Action::Release`]; the message the child
//! would send at its end goes out when the daemon reports [`Event::OpDone`](super::Event).

use super::*;

/// heartbeat's HB_UPD_RSC: a full update replaces, a partial one adds (none clears).
fn upd(full: bool, cur: RscSet, n: RscSet) -> RscSet {
    if full || n.is_empty() {
        n
    } else {
        cur.union(n)
    }
}

impl Engine {
    fn nice(&self) -> bool {
        self.cfg.failback != Failback::Legacy
    }

    fn busy(&self) -> bool {
        self.running.is_some() || !self.ops.is_empty()
    }

    /// heartbeat's `hb_rsc_isstable`.
    pub(super) fn rsc_is_stable(&self) -> bool {
        if !self.nice() {
            return !self.busy();
        }
        if self.shutdown_in_progress && self.rstate == RscState::Init {
            return true;
        }
        self.other_is_stable
            && !self.takeover_in_progress
            && self.going_standby == Standby::Not
            && self.standby_until.is_none()
            && !self.busy()
            && matches!(self.rstate, RscState::Stable | RscState::Shutdown | RscState::Init)
    }

    fn report_peer_holds(&mut self, out: &mut Vec<Action>) {
        let m = self.peer_holds();
        if m != self.reported_peer_holds {
            self.reported_peer_holds = m;
            out.push(Action::PeerHolds(m));
        }
    }

    // ------------------------------------------------------------------ timers

    pub(super) fn rsc_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.standby_until.is_some_and(|t| now >= t) {
            self.standby_until = None;
            self.other_is_stable = true;
            self.going_standby = Standby::Not;
            out.push(Action::Notice(Notice::StandbyCancelled));
            self.shutdown_if_needed(now, out);
        }
        if self.nice() && self.rstate == RscState::RscRcvd && self.local_takeover_at.is_some_and(|t| now >= t) {
            // The peer never became stable: take our own groups now.
            self.rstate = RscState::Stable;
            self.req_our_resources(now, false, out);
            self.send_resources_held(now, true, None, out);
            self.audit(out);
        }
        if self.failback_retry_at.is_some_and(|t| now >= t) {
            self.failback_retry_at = None;
            self.perform_auto_failback(now, out);
        }
        if self.fence_retry_at.is_some_and(|t| now >= t) {
            self.fence_retry_at = None;
            self.fencing = true;
            out.push(Action::Fence);
        }
        if self.restart_at.is_some_and(|t| now >= t) {
            self.restart_at = None;
            self.restart_after_giveup = true;
            self.giveup_resources(now, out);
        }
    }

    // ------------------------------------------------------------------ messages

    pub(super) fn send_ask_resources(&mut self, now: Instant, set: RscSet, info: &str, out: &mut Vec<Action>) {
        let mut m = Message::with_capacity(96, 12);
        let _ = m.add(f::TYPE, t::ASK_RESOURCES);
        let _ = m.add(f::RSC_HOLD, set.name());
        let _ = m.add(f::INFO, info);
        self.send(now, m, out);
    }

    /// "I hold ...": `resource rsc_hold=… rtype=full isstable=0|1 [info=…]` (nice failback only).
    fn send_resources_held(&mut self, now: Instant, stable: bool, info: Option<&str>, out: &mut Vec<Action>) {
        if !self.nice() {
            return;
        }
        let mut m = Message::with_capacity(128, 14);
        let _ = m.add(f::TYPE, t::RESOURCE);
        let _ = m.add(f::RSC_HOLD, self.i_hold.name());
        let _ = m.add(f::RTYPE, "full");
        let _ = m.add(f::ISSTABLE, if stable { "1" } else { "0" });
        if let Some(i) = info {
            let _ = m.add(f::INFO, i);
        }
        self.send(now, m, out);
    }

    fn send_stonith(&mut self, now: Instant, result: &str, out: &mut Vec<Action>) {
        let mut m = Message::with_capacity(96, 12);
        let _ = m.add(f::TYPE, t::STONITH);
        let _ = m.add(f::NODE, &self.cfg.peer.clone());
        let _ = m.add(f::RESULT, result);
        self.send(now, m, out);
    }

    fn send_ip_request_resp(&mut self, now: Instant, dest: &str, g: usize, weown: bool, out: &mut Vec<Action>) {
        let Some(key) = self.cfg.groups.get(g).map(|g| g.key.clone()) else {
            return;
        };
        let mut m = Message::with_capacity(128, 14);
        let _ = m.add(f::TYPE, t::IP_REQUEST_RESP);
        let _ = m.add(f::DEST, dest);
        let _ = m.add(f::IPADDR, &key);
        let _ = m.add(f::WEOWN, if weown { "yes" } else { "no" });
        let _ = m.add(f::OK, "OK");
        self.send(now, m, out);
    }

    /// Our own messages, handled like the peer's (heartbeat loops every message it sends
    /// back through its own handlers before it goes out).
    pub(super) fn loopback(&mut self, now: Instant, m: &Message, out: &mut Vec<Action>) {
        if self.loop_depth >= 8 {
            return;
        }
        self.loop_depth += 1;
        match m.msg_type() {
            Some(t::SHUTDONE) => self.own_shutdone(now, out),
            Some(ty @ (t::RESOURCE | t::STARTING | t::ASK_RESOURCES)) if self.rsc_enabled => {
                let ty = ty.to_string();
                self.resource_msg(now, m, &ty, true, out);
            }
            _ => {}
        }
        self.loop_depth -= 1;
    }

    /// Resource messages (registered by heartbeat once communication is up).
    pub(super) fn resource_msg(
        &mut self,
        now: Instant,
        m: &Message,
        mtype: &str,
        from_me: bool,
        out: &mut Vec<Action>,
    ) {
        match mtype {
            t::STARTING | t::RESOURCE => self.process_resources(now, m, mtype, from_me, out),
            t::ASK_RESOURCES => self.ask_for_resources(now, m, from_me, out),
            t::HB_TAKEOVER if !from_me => {
                // rc.d/hb_takeover runs `hb_standby` with the mirror set (all when unknown).
                let set = match m.rsc_hold() {
                    Some("local") => RscSet::FOREIGN,
                    Some("foreign") => RscSet::LOCAL,
                    _ => RscSet::ALL,
                };
                self.enqueue(OpKind::AskStandby(set));
            }
            t::IP_REQUEST if !from_me => {
                let key = m.get_str(f::IPADDR).unwrap_or("");
                match self.cfg.groups.iter().position(|g| g.key == key) {
                    Some(g) => self.enqueue(OpKind::IpRequest(g)),
                    None => out.push(Action::Notice(Notice::Unexpected("ip-request for an unknown group"))),
                }
            }
            // rc.d/ip-request-resp: take the group if it was granted to us.
            t::IP_REQUEST_RESP
                if !from_me && m.dest() == Some(self.cfg.node.as_str()) && m.get_str(f::OK) == Some("OK") =>
            {
                let key = m.get_str(f::IPADDR).unwrap_or("");
                if let Some(g) = self.cfg.groups.iter().position(|g| g.key == key) {
                    self.enqueue(OpKind::TakeGroup(g));
                }
            }
            _ => {}
        }
    }

    /// heartbeat's `process_resources` for `starting` and `resource` (and the `shutdone` part,
    /// see [`Engine::shutdone_resources`]).
    fn process_resources(&mut self, now: Instant, m: &Message, mtype: &str, from_me: bool, out: &mut Vec<Action>) {
        self.shutdown_if_needed(now, out);
        if !self.nice() {
            return;
        }
        // heartbeat computes the new state in a local and stores it at the end, overwriting
        // whatever the messages sent meanwhile (handled recursively) stored: mirrored here.
        let mut new = self.rstate;
        if mtype == t::STARTING && !from_me {
            match self.rstate {
                RscState::RscRcvd | RscState::Stable | RscState::Shutdown => {}
                RscState::Starting => new = RscState::BothStarting,
                _ => {
                    out.push(Action::Notice(Notice::Unexpected("starting message in this resource state")));
                    return;
                }
            }
            self.other_is_stable = false;
            if self.takeover_in_progress {
                out.push(Action::Notice(Notice::Unexpected("starting message during a takeover")));
            }
            let stable = self.rstate == RscState::Stable;
            self.send_resources_held(now, stable, None, out);
        }
        if mtype == t::RESOURCE {
            let Some(p) = m.rsc_hold() else {
                out.push(Action::Notice(Notice::Unexpected("resource message without rsc_hold")));
                return;
            };
            let n = RscSet::parse(p).unwrap_or_else(|| {
                out.push(Action::Notice(Notice::Unexpected("bad rsc_hold value")));
                RscSet::NONE
            });
            let full = m.get_str(f::RTYPE) == Some("full");
            match self.rstate {
                RscState::BothStarting | RscState::Starting => new = RscState::RscRcvd,
                RscState::RscRcvd | RscState::Stable | RscState::Shutdown => {}
                RscState::Init => {
                    out.push(Action::Notice(Notice::Unexpected("resource message before starting")));
                    return;
                }
            }
            if !from_me {
                self.other_holds = upd(full, self.other_holds, n);
                self.report_peer_holds(out);
                // No isstable: from the peer's mach_down script.
                match m.get_str(f::ISSTABLE) {
                    Some("1") if !self.other_is_stable => {
                        self.other_is_stable = true;
                        let stable = self.rstate == RscState::Stable;
                        self.send_resources_held(now, stable, None, out);
                        self.perform_auto_failback(now, out);
                    }
                    Some("1") | None => {}
                    Some(_) => self.other_is_stable = false,
                }
                if !matches!(self.rstate, RscState::Stable | RscState::Shutdown) && self.other_is_stable {
                    self.req_our_resources(now, false, out);
                    new = RscState::Stable;
                    self.send_resources_held(now, true, None, out);
                    self.perform_auto_failback(now, out);
                }
            } else {
                self.i_hold = upd(full, self.i_hold, n);
                match m.info() {
                    Some("mach_down") => {
                        self.takeover_in_progress = false;
                        self.i_hold = self.i_hold.union(RscSet::FOREIGN);
                        self.needs_failback = true;
                        self.other_is_stable = true;
                    }
                    Some("shutdown") => {
                        self.rstate = RscState::Shutdown;
                        new = RscState::Shutdown;
                    }
                    _ => {}
                }
            }
        }
        self.finish_process_resources(now, new, out);
    }

    fn finish_process_resources(&mut self, now: Instant, new: RscState, out: &mut Vec<Action>) {
        self.rstate = new;
        if self.rstate == RscState::RscRcvd && self.local_takeover_at.is_none() {
            self.local_takeover_at = Some(now + LOCAL_TAKEOVER_DELAY);
        }
        self.audit(out);
        self.shutdown_if_needed(now, out);
    }

    /// The `shutdone` part of heartbeat's `process_resources`.
    fn shutdone_resources(&mut self, now: Instant, from_me: bool, out: &mut Vec<Action>) {
        self.shutdown_if_needed(now, out);
        if !self.nice() {
            return;
        }
        let mut new = self.rstate;
        if !from_me {
            // The peer gave everything up: take what we lack, at once.
            self.other_is_stable = true;
            self.other_holds = RscSet::NONE;
            self.report_peer_holds(out);
            if self.i_hold != RscSet::ALL && !self.shutdown_in_progress {
                let rtype = match self.i_hold {
                    RscSet::FOREIGN => RscSet::LOCAL,
                    RscSet::LOCAL => RscSet::FOREIGN,
                    _ => RscSet::ALL,
                };
                self.going_standby = Standby::Done;
                self.go_standby(now, false, rtype, out);
            }
        } else {
            self.rstate = RscState::Shutdown;
            new = RscState::Shutdown;
            self.i_hold = RscSet::NONE;
        }
        self.finish_process_resources(now, new, out);
    }

    /// The peer's `shutdone`.
    pub(super) fn peer_shutdone(&mut self, now: Instant, _m: &Message, out: &mut Vec<Action>) {
        if self.comm != Comm::Waiting {
            self.shutdone_resources(now, false, out);
        }
        self.peer.has_resources = false;
        self.other_is_stable = false;
        self.other_holds = RscSet::NONE;
        self.report_peer_holds(out);
        self.takeover_from_peer(now, out);
    }

    fn own_shutdone(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.shutdone_resources(now, true, out);
        out.push(if self.restart_after_giveup { Action::Restart } else { Action::ShutdownDone });
    }

    /// heartbeat's `ask_for_resources`: the standby protocol.
    fn ask_for_resources(&mut self, now: Instant, m: &Message, from_me: bool, out: &mut Vec<Action>) {
        if !self.nice() {
            out.push(Action::Notice(Notice::StandbyIgnored("standby needs auto_failback on or off")));
            return;
        }
        if self.rstate == RscState::Shutdown {
            return;
        }
        let (Some(info), Some(from)) = (m.info(), m.src()) else {
            return;
        };
        let info = info.to_string();
        let from = from.to_string();
        let rtype = match m.rsc_hold() {
            None => RscSet::ALL,
            Some(s) => RscSet::parse(s).unwrap_or(RscSet::NONE),
        };
        if self.standby_until.is_some_and(|t| now < t) && info == "me" {
            out.push(Action::Notice(Notice::StandbyIgnored("a standby is in progress")));
            return;
        }
        let mut ignored = false;
        match self.going_standby {
            Standby::Not => {
                if !self.other_is_stable {
                    out.push(Action::Notice(Notice::StandbyIgnored("the other side is in flux")));
                    return;
                }
                if self.rstate != RscState::Stable {
                    out.push(Action::Notice(Notice::StandbyIgnored("local resources in flux")));
                    return;
                }
                self.standby_rsctype = rtype;
                if info == "me" {
                    self.other_is_stable = false;
                    out.push(Action::Notice(Notice::StandbyRequested { node: from.clone(), set: rtype }));
                    if from_me {
                        self.standby_until = Some(now + STANDBY_INIT_TO);
                        self.going_standby = Standby::Me;
                    } else {
                        self.going_standby = Standby::Other;
                        let set = self.standby_rsctype;
                        self.send_ask_resources(now, set, "other", out);
                        self.standby_until = Some(now + STANDBY_RSC_TO);
                    }
                } else {
                    ignored = true;
                }
            }
            Standby::Me => {
                if !from_me {
                    self.standby_rsctype = rtype;
                    self.standby_until = Some(now + STANDBY_RSC_TO);
                    if info == "other" {
                        // The peer will take them: give them up; "done" follows.
                        self.go_standby(now, true, rtype, out);
                    } else {
                        ignored = true;
                    }
                } else if info == "done" {
                    self.going_standby = Standby::Done;
                    self.i_hold = self.i_hold.minus(self.standby_rsctype);
                    self.standby_until = Some(now + STANDBY_RSC_TO);
                } else {
                    ignored = true;
                }
            }
            Standby::Other => {
                self.standby_rsctype = rtype;
                if info == "done" {
                    self.standby_until = Some(now + STANDBY_RSC_TO);
                    if !from_me {
                        // The peer released them: take them.
                        let set = self.standby_rsctype;
                        self.go_standby(now, false, set, out);
                        self.going_standby = Standby::Done;
                    } else {
                        ignored = true;
                    }
                } else if !from_me || info != "other" {
                    ignored = true;
                }
            }
            Standby::Done => {
                self.standby_rsctype = rtype;
                if info == "done" {
                    self.standby_until = None;
                    self.going_standby = Standby::Not;
                    if from_me {
                        let rup = match rtype {
                            RscSet::LOCAL => RscSet::FOREIGN,
                            RscSet::FOREIGN => RscSet::LOCAL,
                            RscSet::ALL => RscSet::ALL,
                            _ => RscSet::NONE,
                        };
                        self.i_hold = self.i_hold.union(rup);
                    }
                    self.send_resources_held(now, true, None, out);
                    self.going_standby = Standby::Not;
                } else {
                    ignored = true;
                }
            }
        }
        if ignored {
            out.push(Action::Notice(Notice::StandbyIgnored("unexpected standby message in this state")));
        }
        self.shutdown_if_needed(now, out);
    }

    /// heartbeat's `go_standby`: `me` = give `set` up (the peer takes it), else take it.
    fn go_standby(&mut self, now: Instant, me: bool, set: RscSet, out: &mut Vec<Action>) {
        if me {
            self.other_is_stable = false;
            self.i_hold = self.i_hold.minus(set);
            self.send_resources_held(now, false, Some("standby"), out);
        }
        let act = match set {
            RscSet::FOREIGN => {
                if me {
                    RscSet::FOREIGN
                } else {
                    RscSet::LOCAL
                }
            }
            RscSet::LOCAL => {
                if me {
                    RscSet::LOCAL
                } else {
                    RscSet::FOREIGN
                }
            }
            RscSet::ALL => RscSet::ALL,
            _ => {
                out.push(Action::Notice(Notice::Unexpected("standby of no resources")));
                return;
            }
        };
        self.enqueue(if me { OpKind::StandbyRelease(act) } else { OpKind::StandbyAcquire(act) });
    }

    /// heartbeat's `req_our_resources`.
    fn req_our_resources(&mut self, _now: Instant, anyway: bool, _out: &mut Vec<Action>) {
        if self.shutdown_in_progress {
            return;
        }
        if self.nice() {
            let owned = self.other_holds.contains(RscSet::FOREIGN) || self.i_hold.contains(RscSet::LOCAL);
            if owned && !anyway && self.going_standby == Standby::Not {
                return;
            }
            self.i_hold = self.i_hold.union(RscSet::LOCAL);
        }
        self.enqueue(OpKind::OwnGroups);
    }

    /// heartbeat's `takeover_from_node`: the peer is gone; take its groups (mach_down) and ours.
    pub(super) fn takeover_from_peer(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.shutdown_in_progress {
            self.shutdown_if_needed(now, out);
            return;
        }
        if self.nice() {
            self.i_hold = self.i_hold.union(RscSet::FOREIGN);
            self.other_holds = RscSet::NONE;
            self.report_peer_holds(out);
            self.other_is_stable = true;
            self.takeover_in_progress = true;
        }
        self.req_our_resources(now, true, out);
        self.enqueue(OpKind::MachDown);
        self.peer.any_packets = true;
    }

    /// heartbeat's `hb_rsc_recover_dead_resources`: the peer was declared dead.
    pub(super) fn recover_dead_resources(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.going_standby != Standby::Not {
            self.going_standby = Standby::Not;
            self.standby_until = None;
            if !self.other_is_stable && self.i_hold == RscSet::ALL {
                self.other_is_stable = true;
            }
            self.shutdown_if_needed(now, out);
        }
        if self.shutdown_in_progress {
            if !matches!(self.rstate, RscState::Shutdown | RscState::Stable) {
                self.giveup_resources(now, out);
            }
            return;
        }
        self.needs_failback = true;
        // If we have heard from it, we may know it holds nothing.
        let mut need_stonith = true;
        if self.peer.any_packets {
            if self.nice() {
                if self.other_holds == RscSet::NONE {
                    need_stonith = false;
                }
            } else if !self.peer.has_resources {
                need_stonith = false;
            }
        }
        if need_stonith {
            if self.cfg.stonith {
                self.fencing = true;
                out.push(Action::Fence);
                return;
            }
            self.send_stonith(now, "n_stnth", out);
            out.push(Action::Notice(Notice::NoStonith));
            self.takeover_from_peer(now, out);
            return;
        }
        self.send_stonith(now, "unneeded", out);
        if self.nice() {
            if self.i_hold == RscSet::ALL {
                self.other_is_stable = true;
                return;
            }
            if !self.i_hold.contains(RscSet::LOCAL) {
                self.req_our_resources(now, true, out);
            }
            if !self.i_hold.contains(RscSet::FOREIGN) {
                self.takeover_from_peer(now, out);
            }
        } else {
            self.takeover_from_peer(now, out);
        }
    }

    pub(super) fn fenced(&mut self, now: Instant, ok: bool, out: &mut Vec<Action>) {
        if !self.fencing {
            return;
        }
        self.fencing = false;
        if ok {
            self.send_stonith(now, "OK", out);
            self.takeover_from_peer(now, out);
        } else {
            out.push(Action::Notice(Notice::FenceFailed));
            self.fence_retry_at = Some(now + Duration::from_secs(5));
        }
    }

    /// heartbeat's `PerformAutoFailback`: give the peer its groups back once it is stable.
    fn perform_auto_failback(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.shutdown_in_progress
            || !self.i_hold.contains(RscSet::FOREIGN)
            || !self.needs_failback
            || self.cfg.failback != Failback::On
        {
            self.needs_failback = false;
            self.shutdown_if_needed(now, out);
            return;
        }
        if self.going_standby != Standby::Not || !self.other_is_stable || self.rstate != RscState::Stable {
            self.failback_retry_at = Some(now + Duration::from_secs(1));
            return;
        }
        self.standby_rsctype = RscSet::FOREIGN;
        self.send_ask_resources(now, RscSet::FOREIGN, "me", out);
        self.needs_failback = false;
    }

    /// Communication is up: heartbeat's `comm_up_resource_action`.
    pub(super) fn comm_up_resources(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.rsc_enabled = true;
        if self.nice() {
            let mut m = Message::with_capacity(64, 10);
            let _ = m.add(f::TYPE, t::STARTING);
            self.send(now, m, out);
            self.rstate = RscState::Starting;
        } else {
            self.req_our_resources(now, false, out);
        }
    }

    /// heartbeat's `hb_initiate_shutdown`.
    pub(super) fn initiate_shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.shutdown_in_progress {
            return;
        }
        self.shutdown_in_progress = true;
        if !self.startup_complete {
            out.push(Action::Notice(Notice::ShutdownDelayed));
            return;
        }
        self.send_status(now, out);
        self.giveup_resources(now, out);
    }

    fn shutdown_if_needed(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.needs_shutdown {
            self.giveup_resources(now, out);
        }
    }

    /// heartbeat's `hb_giveup_resources`: once stable, release everything and say `shutdone`.
    fn giveup_resources(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.rsc_is_stable() {
            if !self.needs_shutdown {
                out.push(Action::Notice(Notice::ShutdownDelayed));
                self.needs_shutdown = true;
            }
            return;
        }
        self.needs_shutdown = false;
        self.shutdown_in_progress = true;
        if self.giveup_started {
            return;
        }
        self.giveup_started = true;
        self.i_hold = RscSet::NONE;
        self.rstate = RscState::Shutdown;
        self.send_resources_held(now, false, Some("shutdown"), out);
        self.enqueue(OpKind::GiveUp);
    }

    /// heartbeat's `AuditResources`, reported when its verdict changes.
    fn audit(&mut self, out: &mut Vec<Action>) {
        if !self.nice() {
            return;
        }
        let (mine, theirs) = (self.i_hold, self.other_holds);
        let mut verdict = None;
        if mine.contains(RscSet::LOCAL) && theirs.contains(RscSet::FOREIGN) {
            verdict = Some("both nodes hold our local resources");
        } else if theirs.contains(RscSet::LOCAL) && mine.contains(RscSet::FOREIGN) {
            verdict = Some("both nodes hold our foreign resources");
        } else if self.rsc_is_stable() && !self.shutdown_in_progress && self.rstate != RscState::Shutdown {
            if !mine.contains(RscSet::LOCAL) && !theirs.contains(RscSet::FOREIGN) {
                verdict = Some("no one holds our local resources");
            } else if !theirs.contains(RscSet::LOCAL) && !mine.contains(RscSet::FOREIGN) {
                verdict = Some("no one holds our foreign resources");
            }
        }
        if verdict != self.audit_last {
            self.audit_last = verdict;
            if let Some(v) = verdict {
                out.push(Action::Notice(Notice::Audit(v)));
            }
        }
    }

    // ------------------------------------------------------------------ operations

    fn enqueue(&mut self, k: OpKind) {
        self.ops.push_back(k);
    }

    /// Starts queued operations until one needs the daemon (or the queue is empty).
    pub(super) fn start_next_op(&mut self, now: Instant, out: &mut Vec<Action>) {
        for _ in 0..64 {
            if self.running.is_some() {
                return;
            }
            // legacy: whether to ask the peer for our groups depends on its status; when we
            // have heard from it but not yet its status (its reqnodes or repnodes can come
            // first), wait for that status rather than wrongly think we are alone.
            if !self.nice()
                && self.ops.front() == Some(&OpKind::OwnGroups)
                && self.peer.status == NodeStatus::Init
                && self.peer.any_packets
            {
                return;
            }
            let Some(kind) = self.ops.pop_front() else {
                return;
            };
            let all = self.local_mask.union(self.foreign_mask);
            let (acquire, groups, why) = match &kind {
                OpKind::OwnGroups => {
                    let want = self.local_mask.minus(self.held);
                    if !self.nice() && self.peer.status == NodeStatus::Active {
                        // legacy, not alone: ask the peer for each group (ip-request); they
                        // come with its ip-request-resp.
                        for g in want.iter() {
                            let key = self.cfg.groups.get(g).map(|g| g.key.clone()).unwrap_or_default();
                            let mut m = Message::with_capacity(96, 12);
                            let _ = m.add(f::TYPE, t::IP_REQUEST);
                            let _ = m.add(f::IPADDR, &key);
                            self.send(now, m, out);
                        }
                        (true, GroupMask::EMPTY, Why::OwnGroups)
                    } else {
                        // Alone, or nice failback: grant them to ourselves, as heartbeat does.
                        let me = self.cfg.node.clone();
                        for g in want.iter() {
                            self.send_ip_request_resp(now, &me, g, true, out);
                        }
                        (true, want, Why::OwnGroups)
                    }
                }
                OpKind::MachDown => (true, self.foreign_mask.minus(self.held), Why::PeerDown),
                OpKind::StandbyRelease(s) => (false, self.mask_of(*s), Why::Standby),
                OpKind::StandbyAcquire(s) => (true, self.mask_of(*s).minus(self.held), Why::Standby),
                OpKind::GiveUp => (false, all, Why::Shutdown),
                OpKind::IpRequest(g) => {
                    if self.held.contains(*g) {
                        (false, GroupMask(1 << *g), Why::IpRequest)
                    } else {
                        let peer = self.cfg.peer.clone();
                        self.send_ip_request_resp(now, &peer, *g, false, out);
                        continue;
                    }
                }
                OpKind::TakeGroup(g) => (true, GroupMask(1 << *g).minus(self.held), Why::IpRequest),
                OpKind::AskStandby(s) => {
                    let s = *s;
                    self.send_ask_resources(now, s, "me", out);
                    continue;
                }
            };
            let id = OpId(self.next_op);
            self.next_op = self.next_op.wrapping_add(1);
            self.running = Some(Running { id, kind, groups, acquire });
            if groups.is_empty() {
                self.op_done(now, id, true, out);
                continue;
            }
            let why = if self.restart_after_giveup && !acquire { Why::Partition } else { why };
            out.push(if acquire {
                Action::Acquire { op: id, groups, why }
            } else {
                Action::Release { op: id, groups, why }
            });
        }
    }

    /// The daemon finished an operation: record it, then send what heartbeat's child sends at
    /// its end.
    pub(super) fn op_done(&mut self, now: Instant, op: OpId, ok: bool, out: &mut Vec<Action>) {
        let Some(r) = self.running.take_if(|r| r.id == op) else {
            return;
        };
        if ok {
            self.held = if r.acquire { self.held.union(r.groups) } else { self.held.minus(r.groups) };
        }
        match r.kind {
            OpKind::OwnGroups => self.send_resources_held(now, true, Some("req_our_resources()"), out),
            OpKind::MachDown => {
                if self.nice() {
                    let mut m = Message::with_capacity(96, 12);
                    let _ = m.add(f::TYPE, t::RESOURCE);
                    let _ = m.add(f::RSC_HOLD, "foreign");
                    let _ = m.add(f::INFO, "mach_down");
                    self.send(now, m, out);
                }
            }
            OpKind::StandbyRelease(_) | OpKind::StandbyAcquire(_) => {
                let set = self.standby_rsctype;
                self.send_ask_resources(now, set, "done", out);
            }
            OpKind::GiveUp => {
                let mut m = Message::with_capacity(64, 10);
                let _ = m.add(f::TYPE, t::SHUTDONE);
                let _ = m.add(f::ST, "dead");
                self.send(now, m, out);
            }
            OpKind::IpRequest(g) => {
                let peer = self.cfg.peer.clone();
                self.send_ip_request_resp(now, &peer, g, true, out);
            }
            OpKind::TakeGroup(_) | OpKind::AskStandby(_) => {}
        }
        self.shutdown_if_needed(now, out);
    }
}
