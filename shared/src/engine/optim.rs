//! A damped Newton minimiser for the small smooth problems of the engine (ordered logit,
//! multinomial logit, Poisson regression, Dixon-Coles): analytic gradient and Hessian,
//! Levenberg-Marquardt damping when the Hessian is not positive definite, Armijo backtracking.

// Numeric kernels index several parallel arrays at once; index loops read best there.
#![allow(clippy::needless_range_loop)]

use super::linalg::{Matrix, cholesky_solve};

/// A twice-differentiable function to minimise.
pub trait Objective {
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// The value at `x`, or +inf outside the domain.
    fn value(&self, x: &[f64]) -> f64;
    /// Gradient and Hessian at `x` (the Hessian arrives zeroed, full storage).
    fn gradient_hessian(&self, x: &[f64], grad: &mut [f64], hess: &mut Matrix);
}

/// Stopping rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewtonOptions {
    pub max_iterations: u32,
    /// Stop when the Newton decrement `-g·δ` falls below this.
    pub tolerance: f64,
}

impl Default for NewtonOptions {
    fn default() -> Self {
        NewtonOptions { max_iterations: 100, tolerance: 1e-10 }
    }
}

/// The minimiser's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub iterations: u32,
}

/// Minimises `obj` from `x0`. Errors describe why no minimum was reached.
pub fn minimise<O: Objective>(obj: &O, x0: Vec<f64>, options: &NewtonOptions) -> Result<Minimum, String> {
    let dim = obj.dim();
    let mut x = x0;
    let mut f = obj.value(&x);
    if !f.is_finite() {
        return Err("the starting point is outside the domain".into());
    }
    let mut grad = vec![0.0; dim];
    let mut hess = Matrix::zeros(dim);
    let mut chol = Vec::with_capacity(dim * dim);
    let mut trial = vec![0.0; dim];
    let mut neg_g = vec![0.0; dim];
    let mut damping: f64 = 0.0;
    let mut iterations = 0;
    while iterations < options.max_iterations {
        iterations += 1;
        grad.iter_mut().for_each(|g| *g = 0.0);
        hess.fill_zero();
        obj.gradient_hessian(&x, &mut grad, &mut hess);
        for i in 0..dim {
            neg_g[i] = -grad[i];
        }
        let step = loop {
            match cholesky_solve(&hess, &neg_g, damping, 1e-12, &mut chol) {
                Some(s) => break s,
                None => {
                    damping = if damping == 0.0 { 1e-4 } else { damping * 10.0 };
                    if damping > 1e8 {
                        return Err("the Hessian cannot be made positive definite".into());
                    }
                }
            }
        };
        let decrement: f64 = -grad.iter().zip(&step).map(|(g, s)| g * s).sum::<f64>();
        if !decrement.is_finite() {
            return Err("non-finite Newton step".into());
        }
        if decrement < options.tolerance {
            // The last step is tiny and quadratically convergent: take it and stop.
            for i in 0..dim {
                trial[i] = x[i] + step[i];
            }
            let ft = obj.value(&trial);
            if ft.is_finite() && ft <= f + 1e-12 * f.abs().max(1.0) {
                x.copy_from_slice(&trial);
                f = ft;
            }
            return Ok(Minimum { x, value: f, iterations });
        }
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            for i in 0..dim {
                trial[i] = x[i] + t * step[i];
            }
            let ft = obj.value(&trial);
            if ft <= f - 1e-4 * t * decrement {
                x.copy_from_slice(&trial);
                f = ft;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            if decrement < 1e-6 {
                // Rounding noise dominates: this is the minimum.
                return Ok(Minimum { x, value: f, iterations });
            }
            damping = if damping == 0.0 { 1e-3 } else { damping * 10.0 };
            continue;
        }
        if t == 1.0 {
            damping *= 0.1;
            if damping < 1e-10 {
                damping = 0.0;
            }
        }
    }
    Err(format!("no convergence in {} iterations", options.max_iterations))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock: a classic non-convex test with minimum at (1, 1).
    struct Rosenbrock;

    impl Objective for Rosenbrock {
        fn dim(&self) -> usize {
            2
        }
        fn value(&self, x: &[f64]) -> f64 {
            (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2)
        }
        fn gradient_hessian(&self, x: &[f64], g: &mut [f64], h: &mut Matrix) {
            g[0] = -2.0 * (1.0 - x[0]) - 400.0 * x[0] * (x[1] - x[0] * x[0]);
            g[1] = 200.0 * (x[1] - x[0] * x[0]);
            h.a[0] = 2.0 - 400.0 * x[1] + 1200.0 * x[0] * x[0];
            h.a[1] = -400.0 * x[0];
            h.a[2] = -400.0 * x[0];
            h.a[3] = 200.0;
        }
    }

    #[test]
    fn minimises_rosenbrock() {
        let m = minimise(&Rosenbrock, vec![-1.2, 1.0], &NewtonOptions::default()).expect("min");
        assert!((m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6, "{m:?}");
    }
}
