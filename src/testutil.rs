//! Helpers shared by unit tests (compiled only for tests).

/// The tests' one seeded generator, the same file the integration tests use.
#[path = "../tests/common/rng.rs"]
mod rng;
pub(crate) use rng::Rng;

/// The tests' one temporary directory type, the same file the integration tests use.
#[path = "../tests/common/tmp.rs"]
#[allow(dead_code)] // not every helper is used by the unit tests
mod tmp;
pub(crate) use tmp::TempDir;

/// Decodes a hex fixture; whitespace between digits is ignored.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[cfg(test)]
mod rng_tests {
    use super::Rng;

    #[test]
    fn streams_are_seeded_and_spread() {
        let (mut a, mut b, mut c) = (Rng::new(1), Rng::new(1), Rng::new(2));
        let va: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(va, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(va, (0..8).map(|_| c.next_u64()).collect::<Vec<_>>());
        let mut r = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(Rng::new(3).below(0), 0);
    }
}
