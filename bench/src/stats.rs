//! Rates and percentiles.

use serde::Serialize;

/// Records and bytes moved in some time.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rate {
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub records_per_s: f64,
    /// Megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
}

impl Rate {
    pub fn new(records: u64, bytes: u64, seconds: f64) -> Rate {
        let seconds = seconds.max(1e-6);
        Rate {
            records,
            bytes,
            seconds,
            records_per_s: records as f64 / seconds,
            mb_per_s: bytes as f64 / 1e6 / seconds,
        }
    }

    /// This rate over `baseline`'s, in records per second.
    pub fn ratio_to(&self, baseline: &Rate) -> f64 {
        self.records_per_s / baseline.records_per_s.max(1e-9)
    }
}

/// Nearest-rank percentile `p` (0–100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn rates_and_ratios() {
        let rate = Rate::new(1000, 2_000_000, 2.0);
        assert_eq!(rate.records_per_s, 500.0);
        assert_eq!(rate.mb_per_s, 1.0);
        assert_eq!(rate.ratio_to(&Rate::new(1000, 0, 1.0)), 0.5);
    }
}
