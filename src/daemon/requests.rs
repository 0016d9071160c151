//! Requests on the control socket: each `tandem` command's request turned into the core's
//! input and a reply, and the `status` views.

use crate::cluster::{GroupId, GroupSel};
use crate::ctl::server::Incoming;
use crate::ctl::Request;
use crate::time::Instant;

use super::io::{Input, ReplyCode};
use super::{node, status, Daemon};

impl Daemon {
    pub(super) fn on_request(&mut self, now: Instant, inc: Incoming) {
        let req = match inc.request {
            Ok(r) => r,
            Err(e) => {
                self.ctl.reply(inc.conn, ReplyCode::Usage.code(), &format!("{e}\n"));
                return;
            }
        };
        match req {
            Request::Status { json } => {
                let body = self.status_body(now, json);
                self.ctl.reply(inc.conn, ReplyCode::Ok.code(), &body);
            }
            Request::Standby(g) | Request::Takeover(g) if self.group_sel(&g).is_none() => {
                self.ctl.reply(inc.conn, ReplyCode::Failed.code(), &format!("no group named {g:?}\n"));
            }
            Request::Standby(g) => {
                if let Some(sel) = self.group_sel(&g) {
                    self.note(log::Level::Info, now, format!("operator: standby {g}"));
                    self.feed(now, Input::Standby(sel));
                    let text = format!("standby {g}: handing over to {}\n", self.cfg.peer_name());
                    self.ctl.reply(inc.conn, ReplyCode::Ok.code(), &text);
                }
            }
            Request::Takeover(g) => {
                if let Some(sel) = self.group_sel(&g) {
                    self.note(log::Level::Info, now, format!("operator: takeover {g}"));
                    self.feed(now, Input::Takeover(sel));
                    self.ctl.reply(inc.conn, ReplyCode::Ok.code(), &format!("takeover {g}: requested\n"));
                }
            }
            Request::Outdate(res) => self.feed(now, Input::OutdateAsk { conn: inc.conn, resource: &res }),
            Request::Cleanup { group, node } => {
                let sel = self.group_sel(&group);
                let local = self.cfg.local_name().to_string();
                match (sel, node) {
                    (None, _) => {
                        self.ctl.reply(inc.conn, ReplyCode::Failed.code(), &format!("no group named {group:?}\n"));
                    }
                    (Some(_), Some(n)) if n != local => {
                        let text = format!(
                            "cleanup clears the failures of the node it runs on: run tandem cleanup {group} on {n}\n"
                        );
                        self.ctl.reply(inc.conn, ReplyCode::Failed.code(), &text);
                    }
                    (Some(sel), _) => {
                        self.note(log::Level::Info, now, format!("operator: cleanup {group}"));
                        for (g, texts) in self.failure_text.iter_mut().enumerate() {
                            if sel == GroupSel::All || sel == GroupSel::One(GroupId(g)) {
                                texts.iter_mut().for_each(|t| *t = None);
                            }
                        }
                        self.feed(now, Input::Cleanup(sel));
                        self.ctl.reply(inc.conn, ReplyCode::Ok.code(), &format!("cleanup {group}: done on {local}\n"));
                    }
                }
            }
            Request::Fence(n) | Request::Fenced(n) if n != self.cfg.peer_name() => {
                let text = if n == self.cfg.local_name() {
                    format!("{n} is this node: a node does not fence itself\n")
                } else {
                    format!("{n} is not this cluster's peer node ({})\n", self.cfg.peer_name())
                };
                self.ctl.reply(inc.conn, ReplyCode::Failed.code(), &text);
            }
            Request::Fence(n) => {
                self.note(log::Level::Warn, now, format!("operator: fence {n}"));
                self.feed(now, Input::FenceNow { conn: inc.conn });
            }
            Request::Fenced(n) => {
                self.note(log::Level::Warn, now, format!("operator: fenced {n} (confirms it is off)"));
                self.feed(now, Input::Fenced { conn: inc.conn });
            }
            Request::Metrics => {
                let body = self.metrics_text(now);
                self.ctl.reply(inc.conn, ReplyCode::Ok.code(), &body);
            }
            Request::MetricsListen(addr) => {
                let (code, text) = self.metrics_listen(&addr);
                self.ctl.reply(inc.conn, code.code(), &text);
            }
            r @ (Request::HbInfo | Request::HbStandby(_) | Request::HbTakeover(_)) => {
                self.on_hb_request(now, inc.conn, r)
            }
        }
    }

    fn group_sel(&self, name: &str) -> Option<GroupSel> {
        if name == "all" {
            return Some(GroupSel::All);
        }
        self.cfg.groups.iter().position(|g| g.name == name).map(|g| GroupSel::One(GroupId(g)))
    }

    pub(super) fn status_view<'a>(&'a self, node: &'a node::Node) -> status::StatusView<'a> {
        status::StatusView {
            cfg: &self.cfg,
            node,
            links: &self.links,
            generation: self.generation,
            transitions: &self.transitions,
            stuck_children: self.runner.stuck(),
            failure_text: &self.failure_text,
            watchdog: self.dog.as_ref().map(|d| status::WatchdogView {
                device: d.path.display().to_string(),
                timeout_s: d.dev.timeout_s,
                petting: d.petting && d.healthy,
                healthy: d.healthy,
            }),
        }
    }

    /// `status --json`.
    pub fn status_json(&self, now: Instant) -> String {
        self.status_body(now, true)
    }

    /// `status`, for humans.
    pub fn status_text(&self, now: Instant) -> String {
        self.status_body(now, false)
    }
}
