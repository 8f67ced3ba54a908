//! The engine's errors.

/// Why the engine could not fit or predict.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Too few usable matches before the prediction date to fit anything.
    #[error("not enough history: {0}")]
    InsufficientHistory(String),
    /// An optimiser did not reach a finite optimum.
    #[error("fitting {model} failed: {reason}")]
    FitFailed { model: &'static str, reason: String },
    /// `ml_model` needs an artifact and none was given.
    #[error("the ml_model strategy needs a trained artifact")]
    MissingArtifact,
    /// An artifact could not be read or is of another version.
    #[error("ml artifact: {0}")]
    Artifact(String),
    /// A strategy name that is not `statistical`, `historical`, `ml_model` or `market`.
    #[error("unknown strategy {0:?} (expected statistical, historical, ml_model or market)")]
    UnknownStrategy(String),
}
