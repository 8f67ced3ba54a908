//! The little dense linear algebra the fitters need: Cholesky factorisation and solves of small
//! symmetric positive definite systems (at most a few hundred unknowns).

// Numeric kernels index several parallel arrays at once; index loops read best there.
#![allow(clippy::needless_range_loop)]

/// A dense square matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub n: usize,
    pub a: Vec<f64>,
}

impl Matrix {
    pub fn zeros(n: usize) -> Self {
        Matrix { n, a: vec![0.0; n * n] }
    }

    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.n + j]
    }

    #[inline]
    pub fn add(&mut self, i: usize, j: usize, v: f64) {
        self.a[i * self.n + j] += v;
    }

    pub fn fill_zero(&mut self) {
        self.a.iter_mut().for_each(|x| *x = 0.0);
    }

    /// Copies the upper triangle into the lower one.
    pub fn symmetrise_from_upper(&mut self) {
        let n = self.n;
        for i in 0..n {
            for j in 0..i {
                self.a[i * n + j] = self.a[j * n + i];
            }
        }
    }
}

/// Solves `(m + damping * diag(m)) x = b` for symmetric `m` (full storage) by Cholesky.
/// `diag_floor` is added to every diagonal entry too. Returns `None` when the system is not
/// positive definite. `work` is reused scratch space.
pub fn cholesky_solve(m: &Matrix, b: &[f64], damping: f64, diag_floor: f64, work: &mut Vec<f64>) -> Option<Vec<f64>> {
    let n = m.n;
    work.clear();
    work.extend_from_slice(&m.a);
    let l = work.as_mut_slice();
    for i in 0..n {
        l[i * n + i] += damping * m.a[i * n + i].abs() + diag_floor;
    }
    // In-place lower-triangular factor L with m = L L^T.
    for j in 0..n {
        let mut d = l[j * n + j];
        for k in 0..j {
            d -= l[j * n + k] * l[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        l[j * n + j] = d;
        for i in (j + 1)..n {
            let mut s = l[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            l[i * n + j] = s / d;
        }
    }
    // Forward then backward substitution.
    let mut x = b.to_vec();
    for i in 0..n {
        let mut s = x[i];
        for k in 0..i {
            s -= l[i * n + k] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = x[i];
        for k in (i + 1)..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    Some(x)
}

/// The logistic function.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_known_system() {
        // [[4,2],[2,3]] x = [2,1] -> x = [0.5, 0]
        let m = Matrix { n: 2, a: vec![4.0, 2.0, 2.0, 3.0] };
        let mut w = Vec::new();
        let x = cholesky_solve(&m, &[2.0, 1.0], 0.0, 0.0, &mut w).expect("spd");
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        let not_pd = Matrix { n: 2, a: vec![1.0, 2.0, 2.0, 1.0] };
        assert!(cholesky_solve(&not_pd, &[1.0, 1.0], 0.0, 0.0, &mut w).is_none());
    }

    #[test]
    fn sigmoid_is_stable() {
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-15);
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) <= 1.0);
    }
}
