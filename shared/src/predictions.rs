//! Predictions: computing with the engine from data known before kick-off, storing, reading; the model-state cache.
