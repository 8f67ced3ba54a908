//! Training: refitting and retraining models on finished matches, evaluating, publishing versioned artifacts.
