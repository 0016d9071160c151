//! Small lexical checks shared by the configuration's parsers (times, interface names).
//! A leaf: it imports nothing else of `config`.

use crate::time::Duration;

/// The longest value [`parse_duration`] accepts.
pub const MAX_DURATION_SECS: u64 = 1_000_000;

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Parses a time: `100ms`, `2s`, `1.5s`, `0.25ms`; a bare number means seconds (`3`, `1.5`).
/// At most nanosecond precision and [`MAX_DURATION_SECS`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit_ns): (&str, u128) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000_000)
    } else {
        (s, 1_000_000_000)
    };
    let bad = || format!("bad time '{s}' (e.g. 500ms, 2s, 1.5s; a bare number is seconds)");
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() || int.len() > 12 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if num.contains('.') && frac.is_empty() {
        return Err(bad());
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let int_v: u128 = int.parse().map_err(|_| bad())?;
    let mut frac_v: u128 = 0;
    let mut scale: u128 = 1;
    for b in frac.bytes() {
        frac_v = frac_v * 10 + u128::from(b - b'0');
        scale *= 10;
    }
    // total ns = (int + frac/scale) * unit_ns; all values are bounded, so no overflow in u128.
    let num_ns = int_v * unit_ns + frac_v * unit_ns / scale;
    if !(frac_v * unit_ns).is_multiple_of(scale) {
        return Err(format!("bad time '{s}': finer than a nanosecond"));
    }
    if num_ns > u128::from(MAX_DURATION_SECS) * 1_000_000_000 {
        return Err(format!("time '{s}' is too long (at most {MAX_DURATION_SECS}s)"));
    }
    let ns = u64::try_from(num_ns).map_err(|_| bad())?;
    Ok(Duration::from_nanos(ns))
}

/// Checks an interface name: 1..=15 characters, no `/`, `:` or blanks.
pub fn check_ifname(i: &str) -> Result<(), String> {
    if i.is_empty() || i.len() > IFNAME_MAX {
        return Err(format!("bad interface name '{i}' (1 to {IFNAME_MAX} characters)"));
    }
    if i == "." || i == ".." || i.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control()) {
        return Err(format!("bad interface name '{i}'"));
    }
    Ok(())
}
