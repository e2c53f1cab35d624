//! Summary statistics of repeated measurements: median and p95 (nearest rank), with min,
//! max and mean for context.

use serde::Serialize;

/// A summary of samples (all in the same unit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p95: f64,
    pub max: f64,
    pub mean: f64,
}

/// The `p`-th percentile (0 < p ≤ 100) of sorted samples by the nearest-rank method: the
/// smallest sample such that at least p % of the samples are ≤ it. `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of sorted samples (the mean of the two middle ones for an even count).
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Summarizes samples (any order; NaNs are dropped). `None` when there is none.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Summary {
        n: v.len(),
        min: v[0],
        median: median(&v)?,
        p95: percentile(&v, 95.0)?,
        max: v[v.len() - 1],
        mean: v.iter().sum::<f64>() / v.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_summary() {
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[f64::NAN]), None);
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn single_sample_is_every_statistic() {
        let s = summarize(&[7.0]).unwrap();
        assert_eq!(
            (s.n, s.min, s.median, s.p95, s.max, s.mean),
            (1, 7.0, 7.0, 7.0, 7.0, 7.0)
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(summarize(&[3.0, 1.0, 2.0]).unwrap().median, 2.0);
        assert_eq!(summarize(&[4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.5);
    }

    #[test]
    fn p95_is_nearest_rank() {
        // 1..=100: the 95th value is 95.
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = summarize(&v).unwrap();
        assert_eq!(s.p95, 95.0);
        assert_eq!(s.median, 50.5);
        assert_eq!((s.min, s.max), (1.0, 100.0));
        assert_eq!(s.mean, 50.5);
        // 1..=20: ceil(0.95 * 20) = 19th value.
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(summarize(&v).unwrap().p95, 19.0);
        // Few samples: p95 is the largest.
        assert_eq!(summarize(&[1.0, 2.0, 10.0]).unwrap().p95, 10.0);
    }

    #[test]
    fn one_outlier_in_twenty_does_not_move_p95() {
        let mut v = vec![1.0; 19];
        v.push(1000.0);
        let s = summarize(&v).unwrap();
        assert_eq!(s.p95, 1.0);
        assert_eq!(s.max, 1000.0);
    }

    #[test]
    fn percentile_bounds() {
        let v = [1.0, 2.0, 3.0];
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 100.0), Some(3.0));
        assert_eq!(percentile(&v, 150.0), Some(3.0));
    }

    #[test]
    fn nans_are_ignored() {
        let s = summarize(&[f64::NAN, 2.0, 4.0]).unwrap();
        assert_eq!((s.n, s.median), (2, 3.0));
    }
}
