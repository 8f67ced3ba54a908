//! Settlement: scoring stored predictions of finished matches, once; accuracy per strategy and model version.
