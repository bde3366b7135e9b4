//! Mean-field predictions for a job's network: the glue between [`super::meanfield`] (pure
//! theory over closures) and the engine's activations and inits.

use super::activation::Activation;
use super::init::Init;
use super::meanfield::{MeanFieldError, MeanFieldInput, Prediction, predict};
use super::spec::JobSpec;

/// The prediction for `depth` hidden layers of `width` units fed by `input_dim` inputs whose
/// mean squared component is `q_in`. The init's (sigma_w, sigma_b) are those of a hidden
/// `width x width` layer. Layer 1's weight-gradient ratio is corrected for an input width other
/// than the hidden width (|dL/dW_1|^2 carries |x_0|^2 = input_dim * q_in).
pub fn mean_field(
    act: Activation,
    init: &Init,
    input_dim: usize,
    width: usize,
    depth: usize,
    q_in: f64,
) -> Result<Prediction, MeanFieldError> {
    let (sigma_w, sigma_b) = init.mean_field_sigmas(width, width);
    let phi = |x: f64| act.value(x);
    let dphi = |x: f64| act.derivative(x);
    let input = MeanFieldInput { phi: &phi, dphi: &dphi, kinks: act.kinks(), sigma_w, sigma_b, q_in };
    let mut p = predict(&input, depth)?;
    if depth > 1 {
        let fix = (input_dim as f64 / width as f64).sqrt();
        p.layers[0].weight_grad_ratio_to_last *= fix;
        p.weight_first_last_ratio = p.layers[0].weight_grad_ratio_to_last;
    }
    Ok(p)
}

/// The prediction for a job's network: its activation and init, its last hidden width, over
/// inputs of `input_dim` components with mean square `q_in`.
pub fn for_spec(spec: &JobSpec, input_dim: usize, q_in: f64) -> Result<Prediction, MeanFieldError> {
    let width = spec.hidden.last().copied().unwrap_or(input_dim);
    mean_field(spec.activation, &spec.init, input_dim, width, spec.depth(), q_in)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::meanfield::Regime;

    #[test]
    fn known_cases_through_the_engine_activations() {
        let ramp = mean_field(Activation::Ramp, &Init::HeNormal, 256, 256, 8, 1.0).unwrap();
        assert!((ramp.chi1 - 1.0).abs() < 1e-9, "{}", ramp.chi1);
        assert_eq!(ramp.regime, Regime::Critical);
        let tanh = mean_field(Activation::Tanh, &Init::Custom { sigma_w: 1.0, sigma_b: 0.0 }, 64, 64, 8, 1.0).unwrap();
        assert!((tanh.chi1 - 1.0).abs() < 1e-9, "{}", tanh.chi1);
        let ordered =
            mean_field(Activation::Tanh, &Init::Custom { sigma_w: 0.5, sigma_b: 0.0 }, 64, 64, 8, 1.0).unwrap();
        assert_eq!(ordered.regime, Regime::Ordered);
        // chi -> 0.25 as q -> 0, and chi(q) < 0.25 on the way: at most 0.5^7 over 7 layers.
        let bound = 0.5f64.powi(7);
        assert!(
            ordered.first_last_ratio <= bound * (1.0 + 1e-9) && ordered.first_last_ratio > 0.5 * bound,
            "{}",
            ordered.first_last_ratio
        );
    }
}
