//! Two serial links on the two ends of a relayed null-modem cable ([`SerialPair`]), for
//! link-level tests and the serial line benchmark. Daemon-level tests use [`super::relay`]
//! directly and let the daemons open the pty slaves.

use std::os::fd::OwnedFd;
use std::path::Path;

use tandem::config::LinkConfig;
use tandem::link::serial::SerialLink;
use tandem::time;

use super::relay::{Faults, Pty, Relay};
use super::TempDir;

/// `serial DEVICE BAUD`, no hardware flow control.
pub fn serial_config(device: &Path, baud: u32) -> LinkConfig {
    LinkConfig::Serial { device: device.to_path_buf(), baud, rtscts: false }
}

/// Opens a serial link named like the daemon names it, with its UUCP lock in `locks`.
pub fn open_serial(device: &Path, baud: u32, locks: &Path) -> SerialLink {
    SerialLink::open_in(&serial_config(device, baud), format!("serial {}", device.display()), time::now(), locks)
        .expect("open serial link")
}

/// Links `a` and `b` on two pty slaves joined by a [`Relay`] (pacing, corruption and cuts
/// as `faults` says, random choices from `seed`), with a private lock directory.
/// Drop closes the links, stops the relay and removes the locks, in that order.
pub struct SerialPair {
    pub a: SerialLink,
    pub b: SerialLink,
    pub relay: Relay,
    _slaves: (OwnedFd, OwnedFd),
    pub locks: TempDir,
}

impl SerialPair {
    pub fn new(baud: u32, faults: Faults, seed: u64) -> SerialPair {
        let locks = TempDir::new("serial-locks");
        let pa = Pty::new();
        let pb = Pty::new();
        let a = open_serial(&pa.path, baud, locks.path());
        let b = open_serial(&pb.path, baud, locks.path());
        assert!(a.is_present() && b.is_present());
        let relay = Relay::start(pa.master, pb.master, faults, seed);
        SerialPair { a, b, relay, _slaves: (pa.slave, pb.slave), locks }
    }
}
