//! Synthetic probes of the public API and the cache cluster, with success and latency metrics.
